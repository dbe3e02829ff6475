"""Visible fallbacks: a NumPy name tilewise.numpy does not run itself yet runs in NumPy on host data and
returns tilewise.numpy arrays (never silently a NumPy array), warns once per name and calling line with
the user's file:line (`FallbackWarning`), and is counted in `fallbacks()`. `TILEWISE_NUMPY_FALLBACK=error`
makes it an error naming the function."""
from __future__ import annotations

import numpy as np

from . import storage
from .array import ndarray, wrap
from .notice import FallbackWarning, fallbacks, note  # noqa: F401 - the namespace takes them from here


def to_numpy(x):
    """Our arrays (also inside lists, tuples and dicts) as NumPy arrays (copied from a device)."""
    if isinstance(x, ndarray):
        return storage.to_host(x._value())
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def to_ours(x, device=storage.CPU):
    """NumPy arrays in a result (also inside tuples and lists) as ours, on `device`."""
    if isinstance(x, np.ndarray):
        return wrap(x if device == storage.CPU else storage.to_device(x, device))
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(to_ours(v, device) for v in x)
    if isinstance(x, list):
        return [to_ours(v, device) for v in x]
    if isinstance(x, tuple):  # a named tuple (e.g. linalg results): same type, fields converted
        return type(x)(*(to_ours(v, device) for v in x))
    return x


def _device(x):
    """The device of the first of our arrays on a device in `x` (the CPU where there is none)."""
    if isinstance(x, ndarray):
        return x._node.device or storage.CPU
    if isinstance(x, (list, tuple)):
        for v in x:
            d = _device(v)
            if d != storage.CPU:
                return d
    if isinstance(x, dict):
        return _device(list(x.values()))
    return storage.CPU


def call(name, fn, args, kwargs):
    note(name)
    out = kwargs.pop("out", None)
    device = _device((args, kwargs, out))
    result = fn(*to_numpy(args), **to_numpy(kwargs))
    result = to_ours(result, device)
    if out is not None:  # NumPy wrote into a host copy of `out`: write the result into `out` itself
        from .core import as_node, write
        write(out[0] if isinstance(out, tuple) else out, as_node(result), name, casting="unsafe")
        return out
    return result


def wrapper(name, fn):
    """`fn` (a NumPy function) as a visible fallback under `name`."""
    def run(*args, **kwargs):
        return call(name, fn, args, kwargs)
    run.__name__ = run.__qualname__ = name.rsplit(".", 1)[-1]
    run.__doc__ = f"NumPy's {name}, run on host data (a visible fallback: see tilewise.numpy.fallbacks())."
    run.__wrapped__ = fn
    return run
