"""Operands in and results out: host arrays by duck typing (NumPy, `__array__`, DLPack; tilewise.numpy
arrays among them, recognised without importing that package, which stands above this one), the dtype
rules, and the checks that run before any work."""
from __future__ import annotations

import numpy as np

from ..ir import dtypes as D

# input dtype -> (accumulator, result); both operands must have the same dtype, as in nvmath
_FLOATS = ("float16", "bfloat16", "float32", "float64")
SUPPORTED = {**{n: ("float64" if n == "float64" else "float32", n) for n in _FLOATS}, "int8": ("int32", "int32")}


def dtype_name(dt):
    d = D.from_numpy(np.dtype(dt))
    return d.name if d is not None else str(np.dtype(dt))


def to_host(x, name):
    """A NumPy view of a host operand (no copy where the object allows one)."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__cuda_array_interface__") or _on_device(x):
        raise NotImplementedError(f"operand '{name}' is a device array; tilewise.math.matmul takes host arrays "
                                  "for now (device operands are part of issue 13 still to do)")
    if hasattr(x, "__array__"):
        return np.asarray(x)
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    if isinstance(x, (list, tuple)):
        return np.asarray(x)
    raise TypeError(f"operand '{name}' must be an array (NumPy, __array__ or DLPack), got {type(x).__name__}")


def _on_device(x):
    dev = getattr(x, "__dlpack_device__", None)
    try:
        return dev is not None and int(dev()[0]) not in (1, 3)  # kDLCPU, kDLCUDAHost
    except Exception:
        return False


def wrap_like(template, result):
    """The result as the kind of array `template` is: NumPy stays NumPy; an array-API array (a
    tilewise.numpy array) goes through its namespace's asarray."""
    if isinstance(template, np.ndarray) or result is None:
        return result
    ns = getattr(template, "__array_namespace__", None)
    if ns is not None:
        try:
            return ns().asarray(result)
        except Exception:
            return result
    return result


def check_pair(a, b):
    """(batch shape, m, n, k, accumulator name, result name) of a @ b, or the error naming both operands."""
    da, db = dtype_name(a.dtype), dtype_name(b.dtype)
    if da != db:
        raise TypeError(f"matmul: operand a has dtype {da} and b has {db}; both must have the same dtype, one of "
                        f"{', '.join(SUPPORTED)}")
    if da not in SUPPORTED:
        raise TypeError(f"matmul: operands a and b have dtype {da}, which is not supported; use one of "
                        f"{', '.join(SUPPORTED)} (int8 gives an int32 result)")
    if a.ndim < 1 or b.ndim < 1:
        raise ValueError(f"matmul: operands must have at least one dimension; a has shape {a.shape}, "
                         f"b has shape {b.shape}")
    sa = a.shape if a.ndim > 1 else (1,) + a.shape
    sb = b.shape if b.ndim > 1 else b.shape + (1,)
    if sa[-1] != sb[-2]:
        raise ValueError(f"matmul: the inner dimensions differ: a has shape {a.shape} (k = {sa[-1]}) and b has "
                         f"shape {b.shape} (k = {sb[-2]})")
    try:
        batch = np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dimensions of a (shape {a.shape}) and b (shape {b.shape}) do not "
                         "broadcast") from None
    acc, res = SUPPORTED[da]
    return batch, sa[-2], sb[-1], sa[-1], acc, res


def as_2d(a, b):
    """1-D operands as numpy.matmul treats them: a vector a is a row, a vector b a column."""
    return (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)


def squeeze_vectors(result, a_ndim, b_ndim):
    if b_ndim == 1:
        result = result[..., 0]
    if a_ndim == 1:
        result = result[..., 0, :] if b_ndim != 1 else result[..., 0]
    return result
