"""NumPy's protocols: `numpy.sin(x)`, `numpy.concatenate([x, y])` and friends called on our arrays come
here and run natively where tilewise.numpy has the function, else as a visible fallback; either way the
result is a tilewise.numpy array."""
from __future__ import annotations

import numpy as np

from . import core, fallback, functions, storage
from .array import PROTOCOLS, ndarray, wrap

_REDUCE_METHODS = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
                   "logical_or": "any", "logical_and": "all"}


def _foreign_container(x):
    """An operand that has NumPy's protocols of its own and is not an array we take in (a Dask array, an
    xarray object...): NEP 13 and 18 say to return NotImplemented so that its own protocol runs."""
    if isinstance(x, (list, tuple)):
        return any(_foreign_container(v) for v in x)
    return hasattr(x, "__array_function__") and not isinstance(x, (np.ndarray, np.generic, ndarray)) \
        and not storage.on_device(x)


def array_ufunc(ufunc, method, inputs, kwargs):
    if any(_foreign_container(x) for x in inputs) or _foreign_container(kwargs.get("out", ())):
        return NotImplemented
    name = ufunc.__name__
    if method == "__call__" and name in functions.UFUNC_FUNCTIONS and set(kwargs) <= {"out", "dtype"}:
        return functions.UFUNC_FUNCTIONS[name](*inputs, **kwargs)
    if method == "__call__" and name == "matmul" and set(kwargs) <= {"out", "dtype"}:
        # NumPy's matmul is a gufunc, so numpy.matmul(x, y) (as Dask's blockwise matmul calls it) comes here
        return functions.matmul(*inputs, **kwargs)
    if method == "reduce" and name in _REDUCE_METHODS and set(kwargs) <= {"axis", "dtype", "out", "keepdims"}:
        op = _REDUCE_METHODS[name]
        out = kwargs.get("out")
        kwargs = {**kwargs, "out": out[0] if isinstance(out, tuple) else out, "axis": kwargs.get("axis", 0)}
        if op not in ("sum", "prod"):
            kwargs.pop("dtype", None)
        return core.reduce(op, inputs[0], wrap, **kwargs)
    return fallback.call(f"{name}.{method}" if method != "__call__" else name, getattr(ufunc, method), inputs,
                         kwargs)


def array_function(func, args, kwargs):
    if _foreign_container(list(args)) or _foreign_container(list(kwargs.values())):
        return NotImplemented
    name = func.__name__
    module = func.__module__ or "numpy"
    if module in ("numpy", "numpy._core.multiarray", "numpy._core.fromnumeric", "numpy._core.numeric") \
            and name in functions.NATIVE:
        return getattr(functions, name)(*args, **kwargs)
    qual = name if module.startswith("numpy._core") or module == "numpy" else \
        f"{module.removeprefix('numpy.').split('.')[0]}.{name}"
    return fallback.call(qual, func, args, kwargs)


PROTOCOLS.update(array_ufunc=array_ufunc, array_function=array_function)
