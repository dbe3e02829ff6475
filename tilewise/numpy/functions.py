"""The functions of tilewise.numpy that run natively: every ufunc of the table (ufuncs.py), reductions and
the statistics built from them, `where`, `clip`, `isclose`, and the creation functions. On the CPU device
an array's memory is host memory, so creation allocates and fills it with NumPy; what is computed from
arrays runs as fused tile kernels (core.py, kernels.py)."""
from __future__ import annotations

import builtins
import functools
import math

import numpy as np

from . import core, devices, expr, fallback, notice, scans, shaping, storage, ufuncs
from .array import METHODS, ndarray, wrap
from .expr import Leaf, Map, Scalar

_UFUNC_KW = frozenset(("out", "dtype"))


def _ufunc_function(name):
    uf = getattr(np, name)

    def fn(*args, out=None, dtype=None, **kwargs):
        if kwargs:  # where=, casting=, order=, signature=: NumPy does it
            return fallback.call(f"{name}({', '.join(kwargs)}=...)", uf, args, {"out": out, "dtype": dtype, **kwargs})
        if isinstance(out, tuple):
            out = out[0]
        return core.apply_ufunc(name, args, wrap, out=out, dtype=dtype)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"numpy.{name}, fused into tile kernels with the operations around it."
    fn.nin, fn.nout, fn.ufunc = uf.nin, uf.nout, uf
    return fn


UFUNC_FUNCTIONS = {name: _ufunc_function(name) for name in ufuncs.UFUNCS}


# ---- reductions and statistics -------------------------------------------------------------------

def _reduction(op):
    def fn(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
        if kwargs:  # initial=, where=
            return fallback.call(f"{op}({', '.join(kwargs)}=...)", getattr(np, op), (a,),
                                 {"axis": axis, "dtype": dtype, "out": out, "keepdims": keepdims, **kwargs}
                                 if op in ("sum", "prod") else {"axis": axis, "out": out, "keepdims": keepdims,
                                                               **kwargs})
        if dtype is not None and op not in ("sum", "prod"):
            raise TypeError(f"{op}() got an unexpected keyword argument 'dtype'")
        return core.reduce(op, a, wrap, axis=axis, dtype=dtype, out=out, keepdims=keepdims)
    fn.__name__ = fn.__qualname__ = op
    return fn


sum = _reduction("sum")  # noqa: A001 - NumPy's names
prod = _reduction("prod")
max = _reduction("max")  # noqa: A001
min = _reduction("min")  # noqa: A001
amax, amin = max, min
any = _reduction("any")  # noqa: A001
all = _reduction("all")  # noqa: A001


def _float_dtype(a, dtype):
    """NumPy's mean dtype: the given one, else float64 for integers and bool, else the input's."""
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.float64) if np.dtype(a.dtype).kind in "biu" else np.dtype(a.dtype)


def _accumulate_dtype(dt):
    return np.dtype(np.float32) if dt.kind == "f" and dt.itemsize < 4 else dt


def mean(a, axis=None, dtype=None, out=None, keepdims=False, **kwargs):
    if kwargs:
        return fallback.call("mean(where=...)", np.mean, (a,), {"axis": axis, "dtype": dtype, "out": out,
                                                                "keepdims": keepdims, **kwargs})
    a = asarray(a)
    dt = _float_dtype(a, dtype)
    acc = _accumulate_dtype(dt)
    n = core.count(a.shape, axis)
    s = sum(a, axis=axis, dtype=acc, keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = core.apply_ufunc("true_divide", (s, acc.type(n) if n else acc.type(np.nan)), wrap)
    r = r.astype(dt, copy=False)
    return core.write(out, r._node, "mean", casting="unsafe") if out is not None else r


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, correction=None, **kwargs):
    """numpy.var; `correction` is the Array API's name for `ddof`."""
    if correction is not None:
        if ddof != 0:
            raise ValueError("ddof and correction can't be provided simultaneously.")
        ddof = correction
    if kwargs:
        return fallback.call("var(where=...)", np.var, (a,), {"axis": axis, "dtype": dtype, "out": out,
                                                              "ddof": ddof, "keepdims": keepdims, **kwargs})
    a = asarray(a)
    dt = _float_dtype(a, dtype)
    acc = _accumulate_dtype(dt)
    x = a.astype(acc, copy=False)
    d = x - mean(x, axis=axis, keepdims=True)
    n = core.count(a.shape, axis) - ddof
    r = sum(d * d, axis=axis, keepdims=keepdims) / acc.type(n if n > 0 else np.nan)
    r = r.astype(dt, copy=False)
    return core.write(out, r._node, "var", casting="unsafe") if out is not None else r


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, correction=None, **kwargs):
    """numpy.std; `correction` is the Array API's name for `ddof`."""
    r = sqrt(var(a, axis=axis, dtype=dtype, ddof=ddof, keepdims=keepdims, correction=correction, **kwargs))
    return core.write(out, r._node, "std", casting="unsafe") if out is not None else r


def _scan(op):
    def fn(a, axis=None, dtype=None, out=None):
        node = core.as_node(a)
        rdtype = getattr(np, op)(np.zeros((1,), node.dtype), dtype=dtype).dtype
        r = wrap(scans.cumulative(op, node, axis, rdtype))
        return core.write(out, r._node, op, casting="unsafe") if out is not None else r
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"numpy.{op}: one kernel walking the axis with a running total, reading its input fused."
    return fn


def _arg(op):
    def fn(a, axis=None, out=None, *, keepdims=False):
        r = wrap(scans.arg_reduce(op, core.as_node(a), axis, keepdims))
        return core.write(out, r._node, op, casting="unsafe") if out is not None else r
    fn.__name__ = fn.__qualname__ = op
    fn.__doc__ = f"numpy.{op}: one kernel keeping the best value so far and its index, reading its input fused."
    return fn


cumsum, cumprod = _scan("cumsum"), _scan("cumprod")
argmax, argmin = _arg("argmax"), _arg("argmin")


_MATMUL_DTYPES = frozenset(map(np.dtype, (np.float16, np.float32, np.float64)))


def matmul(x1, x2, /, out=None, *, dtype=None, **kwargs):
    """numpy.matmul: tilewise.math's GEMM kernel for float operands of one dtype on the CPU (NumPy itself
    below expr.SMALL multiply-adds); other dtypes and devices are a visible fallback for now."""
    a, b = asarray(x1), asarray(x2)
    if kwargs or dtype is not None or a.dtype != b.dtype or a.dtype not in _MATMUL_DTYPES \
            or a.device != storage.CPU or b.device != storage.CPU or not a.ndim or not b.ndim:
        return fallback.call("matmul", np.matmul, (a, b), {"out": out, "dtype": dtype, **kwargs})
    from .. import math as twmath
    work = math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])) * a.shape[-1] * \
        (a.shape[-2] if a.ndim > 1 else 1) * (b.shape[-1] if b.ndim > 1 else 1)
    if work < expr.SMALL:
        r = wrap(np.matmul(a._value(), b._value()))
    else:
        r = wrap(np.asarray(twmath.matmul(a._value(), b._value())))
    return core.write(out, r._node, "matmul", casting="same_kind") if out is not None else r


def dot(a, b, out=None):
    """numpy.dot: matmul where they agree (operands of at most two dimensions), else a fallback."""
    if core.as_node(a).shape and core.as_node(b).shape and len(core.as_node(a).shape) <= 2 \
            and len(core.as_node(b).shape) <= 2:
        return matmul(a, b, out=out)
    return fallback.call("dot", np.dot, (a, b), {"out": out})


# ---- element-wise helpers --------------------------------------------------------------------------

def where(condition, x=None, y=None, /):
    if x is None and y is None:
        return fallback.call("where(condition)", np.where, (condition,), {})
    if x is None or y is None:
        raise ValueError("either both or neither of x and y should be given")
    nodes = [core.as_node(v) for v in (condition, x, y)]
    dt = np.result_type(*(n.value if isinstance(n, Scalar) else n.dtype for n in nodes[1:]))  # NEP 50
    shape = np.broadcast_shapes(*(n.shape for n in nodes))
    node = Map("where", nodes, shape, dt, (np.dtype(bool), dt, dt))
    small = math.prod(shape) < expr.SMALL and builtins.all(isinstance(n, (Leaf, Scalar)) for n in nodes)
    return wrap(Leaf(core.evaluate(node))) if small else wrap(node)


def clip(a, a_min=np._NoValue, a_max=np._NoValue, out=None, *, min=np._NoValue, max=np._NoValue, **kwargs):  # noqa: A002
    """numpy.clip: maximum then minimum, fused; `min`/`max` are the Array API's names for the bounds."""
    if (min is not np._NoValue or max is not np._NoValue) and (a_min is not np._NoValue or a_max is not np._NoValue):
        raise ValueError("Passing `min` or `max` keyword argument when `a_min` and `a_max` are provided is forbidden.")
    lo = a_min if a_min is not np._NoValue else min if min is not np._NoValue else None
    hi = a_max if a_max is not np._NoValue else max if max is not np._NoValue else None
    if kwargs:
        return fallback.call("clip", np.clip, (a, lo, hi), {"out": out, **kwargs})
    r = asarray(a)
    if lo is None and hi is None:
        r = r.copy()
    if lo is not None:
        r = maximum(r, lo)
    if hi is not None:
        r = minimum(r, hi)
    return core.write(out, r._node, "clip") if out is not None else r


def round(a, decimals=0, out=None):  # noqa: A001 - NumPy's name
    a = asarray(a)
    if decimals != 0 or a.dtype.kind != "f":
        return fallback.call("round", np.round, (a,), {"decimals": decimals, "out": out})
    return rint(a, out=out)


around = round


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    a, b = asarray(a), asarray(b)
    dt = np.result_type(a.dtype, b.dtype, 1.0)
    x, y = a.astype(dt, copy=False), b.astype(dt, copy=False)
    finite = isfinite(x) & isfinite(y)
    with np.errstate(invalid="ignore"):
        close = where(finite, absolute(x - y) <= atol + rtol * absolute(y), equal(x, y))
    if equal_nan:
        close = close | (isnan(x) & isnan(y))
    return close


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return bool(all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan)))


def array_equal(a1, a2, equal_nan=False):
    a1, a2 = asarray(a1), asarray(a2)
    if a1.shape != a2.shape:
        return False
    same = equal(a1, a2)
    if equal_nan and a1.dtype.kind == "f":
        same = same | (isnan(a1) & isnan(a2))
    return bool(all(same))


def astype(x, dtype, /, *, copy=True, device=None):
    return asarray(x).astype(dtype, copy=copy)


# ---- creation ------------------------------------------------------------------------------------

def asarray(a, dtype=None, order=None, *, device=None, copy=None, like=None):
    if isinstance(a, ndarray):
        r = a.to_device(device) if device is not None else a
        if dtype is not None and np.dtype(dtype) != r.dtype:
            return r.astype(dtype)
        return r.copy() if copy and r is a else r
    target = devices.target(device, a if storage.on_device(a) else None)
    if storage.on_device(a):
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return asarray(wrap(a), dtype, device=target)
        return wrap(storage.to_device(a, target))
    value = np.asarray(a, dtype=dtype, order=order, copy=copy)
    return wrap(value if target == storage.CPU else storage.to_device(value, target))


def array(obj, dtype=None, *, copy=True, order="K", ndmin=0, like=None, device=None):
    if isinstance(obj, ndarray) and ndmin <= obj.ndim:
        return asarray(obj, dtype, device=device, copy=copy)
    return asarray(np.array(fallback.to_numpy(obj), dtype=dtype, copy=copy, order=order, ndmin=ndmin),
                   device=device)


def _filled(shape, fill, dtype, device):
    """A new array of `shape` on `device`, filled with `fill` (None: not filled) by a kernel on a device."""
    if device == storage.CPU:
        return wrap(np.empty(shape, dtype) if fill is None else np.full(shape, fill, dtype))
    out = wrap(storage.empty(shape, dtype, device))
    if fill is not None:
        out.fill(fill)
    return out


def _shape(shape):
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)


def zeros(shape, dtype=float, order="C", *, device=None, like=None):
    return _filled(_shape(shape), 0, np.dtype(dtype), devices.target(device))


def ones(shape, dtype=float, order="C", *, device=None, like=None):
    return _filled(_shape(shape), 1, np.dtype(dtype), devices.target(device))


def empty(shape, dtype=float, order="C", *, device=None, like=None):
    return _filled(_shape(shape), None, np.dtype(dtype), devices.target(device))


def full(shape, fill_value, dtype=None, order="C", *, device=None, like=None):
    dtype = np.dtype(dtype) if dtype is not None else np.asarray(fill_value).dtype
    return _filled(_shape(shape), fill_value, dtype, devices.target(device))


def _like(fill):
    def fn(prototype, dtype=None, order="K", subok=True, shape=None, *, device=None, **kwargs):
        node = core.as_node(prototype)
        value = kwargs.get("fill_value", fill)
        dt = np.dtype(dtype) if dtype is not None else node.dtype
        return _filled(_shape(shape) if shape is not None else node.shape, value, dt,
                       devices.target(device, prototype))
    return fn


zeros_like, ones_like, empty_like = _like(0), _like(1), _like(None)


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    return _like(fill_value)(a, dtype, order, subok, shape, device=device)


def _host_creator(np_fn):
    """A creation function NumPy computes on the host; on a device its result is copied there (not yet a
    kernel: counted as a fallback)."""
    @functools.wraps(np_fn)
    def fn(*args, device=None, like=None, **kwargs):
        target = devices.target(device)
        value = np_fn(*fallback.to_numpy(args), **fallback.to_numpy(kwargs))
        if target == storage.CPU:
            return fallback.to_ours(value)
        notice.note(f"{np_fn.__name__} on a device")
        return wrap(storage.to_device(np.asarray(value), target))
    fn.__doc__ = f"numpy.{np_fn.__name__}: made on the host (and copied to a device where one is asked for)."
    return fn


CREATORS = {name: _host_creator(getattr(np, name)) for name in (
    "arange", "linspace", "logspace", "eye", "identity", "ascontiguousarray", "copy", "frombuffer",
    "fromfunction", "tri", "meshgrid", "indices")}
globals().update(CREATORS)
globals().update(shaping.VIEWS)
concatenate, stack, hstack, vstack, column_stack = (shaping.concatenate, shaping.stack, shaping.hstack,
                                                    shaping.vstack, shaping.column_stack)
roll, copyto, diff, outer = shaping.roll, shaping.copyto, shaping.diff, shaping.outer
concat = concatenate  # the Array API's name
globals().update(UFUNC_FUNCTIONS)
sqrt, maximum, minimum, rint = (UFUNC_FUNCTIONS[n] for n in ("sqrt", "maximum", "minimum", "rint"))
absolute, equal, isfinite, isnan = (UFUNC_FUNCTIONS[n] for n in ("absolute", "equal", "isfinite", "isnan"))


def ndim(a):
    return a.ndim if isinstance(a, ndarray) else np.ndim(a)


def shape(a):
    return a.shape if isinstance(a, ndarray) else np.shape(a)


def size(a, axis=None):
    if isinstance(a, ndarray):
        return a.size if axis is None else a.shape[axis]
    return np.size(a, axis)


def evaluate(*arrays):
    """Compute every pending array given now (one kernel per fusable group)."""
    for a in arrays:
        if isinstance(a, ndarray):
            a._value()


def synchronize():
    """Wait for all work (on the CPU device every launch has finished when it returns)."""


NATIVE = {name for name, v in list(globals().items()) if callable(v) and not name.startswith("_")
          and getattr(v, "__module__", None) in (__name__, shaping.__name__)} | set(CREATORS) | set(UFUNC_FUNCTIONS)
NATIVE -= {"evaluate", "synchronize"}
NATIVE |= {"zeros", "ones", "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like"}
METHODS.update({name: globals()[name] for name in ("sum", "prod", "max", "min", "any", "all", "mean", "var",
                                                   "std", "clip", "round", "cumsum", "cumprod", "argmax",
                                                   "argmin")})
