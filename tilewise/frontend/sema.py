"""Typing rules of tile expressions: Python scalars, promotion, broadcasting, casts, elementwise ops.

Functions here take a Builder and frontend values and return frontend values; they raise TileError
subclasses without a location, which the lowering attaches from the current AST node.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from .. import language as L
from ..errors import TileTypeError, TileValueError
from ..ir import dtypes as D
from ..ir.types import TileType
from .values import ArrayV, TileV, describe, is_py_scalar

PY_BINARY = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "truediv": operator.truediv,
             "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
             "and": operator.and_, "or": operator.or_, "xor": operator.xor, "shl": operator.lshift,
             "shr": operator.rshift, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
             "le": operator.le, "gt": operator.gt, "ge": operator.ge, "minimum": min, "maximum": max,
             "atan2": math.atan2}
PY_UNARY = {"neg": operator.neg, "abs": abs, "invert": operator.invert, "floor": math.floor,
            "ceil": math.ceil, "exp": math.exp, "log": math.log, "sqrt": math.sqrt, "sin": math.sin,
            "cos": math.cos, "tan": math.tan, "tanh": math.tanh, "exp2": lambda x: 2.0 ** x,
            "log2": math.log2, "log10": math.log10, "log1p": math.log1p, "expm1": math.expm1,
            "erf": math.erf, "isnan": math.isnan, "isinf": math.isinf, "trunc": math.trunc,
            "rsqrt": lambda x: 1.0 / math.sqrt(x), "sigmoid": lambda x: 1.0 / (1.0 + math.exp(-x))}


def require_tile(x, what="operand") -> TileV:
    if not isinstance(x, TileV):
        raise TileTypeError(f"{what} must be a tile or scalar, got {describe(x)}")
    return x


def const(b, value, dtype, shape=()) -> TileV:
    if dtype.is_bool:
        value = bool(value)
    elif dtype.is_int:
        value = int(value)
        lo, hi = (0, 2**dtype.bits) if dtype.kind == "u" else (-2**(dtype.bits - 1), 2**(dtype.bits - 1))
        if not lo <= value < hi:
            raise TileValueError(f"{value} does not fit in {dtype.name}")
    else:
        value = float(value)
    return TileV(b.one("constant", value=value, shape=tuple(shape), dtype=dtype))


def as_tile(b, x, dtype=None) -> TileV:
    """A tile from a tile or a Python scalar (which takes `dtype`, or its own default dtype)."""
    if isinstance(x, TileV):
        return x if dtype is None else cast(b, x, dtype)
    if is_py_scalar(x) or isinstance(x, np.generic):
        return const(b, x.item() if isinstance(x, np.generic) else x, dtype or D.scalar_dtype(x))
    raise TileTypeError(f"expected a tile or a number, got {describe(x)}")


def cast(b, x: TileV, dtype) -> TileV:
    if x.dtype is dtype:
        return x
    return TileV(b.one("cast", [x.v], dtype=dtype))


def broadcast_shapes(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise TileTypeError("shapes " + " and ".join(map(str, shapes)) + " cannot be broadcast together; "
                            "each dimension must match or be 1 (add axes with x[:, None], or reshape / "
                            "tw.broadcast_to)") from None


def broadcast_to(b, x: TileV, shape) -> TileV:
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if len(shape) < x.ndim:
        raise TileTypeError(f"cannot broadcast a tile of shape {x.shape} to {shape}; each dimension must "
                            "match or be 1")
    v = x.v
    if x.ndim < len(shape):
        v = b.one("reshape", [v], shape=(1,) * (len(shape) - x.ndim) + x.shape)
    if any(s != d and s != 1 for s, d in zip(v.type.shape, shape)):
        raise TileTypeError(f"cannot broadcast a tile of shape {x.shape} to {shape}; each dimension must "
                            "match or be 1")
    return TileV(b.one("broadcast", [v], shape=shape))


def result_dtype(a, b):
    """Promotion of two operands, at least one of them a tile."""
    if not isinstance(a, TileV):
        return D.weak_promote(b.dtype, a)
    if not isinstance(b, TileV):
        return D.weak_promote(a.dtype, b)
    return D.promote(a.dtype, b.dtype)


def binary(b, fn, x, y):
    """`x <fn> y` with NumPy-style promotion and broadcasting; Python constants fold in Python."""
    if not isinstance(x, TileV) and not isinstance(y, TileV):
        if fn == "matmul":
            raise TileTypeError("@ needs tiles")
        try:
            return PY_BINARY[fn](x, y)
        except Exception as e:
            raise TileValueError(f"cannot evaluate constant expression: {e}") from None
    for v in (x, y):
        if not isinstance(v, TileV) and not is_py_scalar(v):
            raise TileTypeError(f"unsupported operand for {fn}: {describe(v)}")
    dt = result_dtype(x, y)
    if fn in ("truediv", "atan2") and not dt.is_float:
        dt = D.float32
    if fn in ("and", "or", "xor") and dt.is_float:
        raise TileTypeError(f"bitwise '{fn}' needs integer or bool operands, got {dt.name}")
    if fn in ("shl", "shr") and not dt.is_int:
        raise TileTypeError(f"shift needs integer operands, got {dt.name}")
    if fn in ("add", "sub", "mul", "floordiv", "mod", "pow") and dt.is_bool:
        dt = D.int32
    x, y = as_tile(b, x, dt), as_tile(b, y, dt)
    shape = broadcast_shapes(x.shape, y.shape)
    x, y = broadcast_to(b, x, shape), broadcast_to(b, y, shape)
    if dt is D.tfloat32:
        dt = D.float32
        x, y = cast(b, x, dt), cast(b, y, dt)
    return TileV(b.one("binary", [x.v, y.v], fn=fn))


def unary(b, fn, x):
    from ..ir.ops import UNARY_FLOAT
    if not isinstance(x, TileV):
        if not is_py_scalar(x):
            raise TileTypeError(f"{fn} needs a tile or number, got {describe(x)}")
        return PY_UNARY[fn](x)
    if fn in UNARY_FLOAT and not x.dtype.is_float:
        x = cast(b, x, D.float32)
    if fn in ("neg", "abs") and x.dtype.is_bool:
        x = cast(b, x, D.int32)
    if fn in ("floor", "ceil", "trunc", "round") and not x.dtype.is_float:
        return x
    if fn == "invert" and x.dtype.is_float:
        raise TileTypeError(f"~ needs an integer or bool tile, got {x.dtype.name}")
    if fn == "invert" and x.dtype.is_bool:
        return logical_not(b, x)
    return TileV(b.one("unary", [x.v], fn=fn))


def cdiv(b, x, y):
    """Ceiling division of integers: folded where both are compile-time, else IR."""
    if isinstance(x, TileV) or isinstance(y, TileV):
        return binary(b, "floordiv", binary(b, "add", x, binary(b, "sub", y, 1)), y)
    return L.cdiv(x, y)


def to_bool(b, x) -> TileV:
    x = require_tile(x)
    if x.dtype.is_bool:
        return x
    return binary(b, "ne", x, 0)


def logical_not(b, x):
    if not isinstance(x, TileV):
        return not x
    x = to_bool(b, x)
    return TileV(b.one("binary", [x.v, const(b, True, D.bool_, x.shape).v], fn="xor"))


def logical(b, fn, x, y):
    """`and` / `or` on runtime conditions (both sides evaluated; tiles have no side effects)."""
    return binary(b, fn, to_bool(b, as_tile(b, x)), to_bool(b, as_tile(b, y)))


def where(b, c, x, y):
    if not isinstance(c, TileV):
        return x if c else y
    c = to_bool(b, c)
    if isinstance(x, TileV) or isinstance(y, TileV):
        dt = result_dtype(x, y)
    else:
        dt = D.promote(D.scalar_dtype(x), D.scalar_dtype(y))
    x, y = as_tile(b, x, dt), as_tile(b, y, dt)
    shape = broadcast_shapes(c.shape, x.shape, y.shape)
    c, x, y = (broadcast_to(b, t, shape) for t in (c, x, y))
    return TileV(b.one("where", [c.v, x.v, y.v]))


def reshape(b, x: TileV, shape) -> TileV:
    shape = const_shape(shape, "reshape shape")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        shape = tuple(math.prod(x.shape) // max(known, 1) if s == -1 else s for s in shape)
    if math.prod(shape) != math.prod(x.shape):
        raise TileValueError(f"cannot reshape a tile of shape {x.shape} ({math.prod(x.shape)} elements) to {shape} "
                             f"({math.prod(shape)} elements); the new shape must have the same number of elements")
    if shape == x.shape:
        return x
    return TileV(b.one("reshape", [x.v], shape=shape))


def const_shape(shape, what="shape"):
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)) or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
        got = describe(shape) if not isinstance(shape, (tuple, list)) else \
            "(" + ", ".join(describe(s) if isinstance(s, TileV) else repr(s) for s in shape) + ")"
        runtime = isinstance(shape, TileV) or (isinstance(shape, (tuple, list)) and
                                               any(isinstance(s, TileV) for s in shape))
        raise TileTypeError(f"{what} must be a tuple of compile-time ints (literals or tw.Constant "
                            f"parameters), got {got}" + ("; a runtime scalar cannot size a tile: make it a "
                                                         "tw.Constant[int] parameter, or load a fixed-size tile "
                                                         "and let padding cover the edge" if runtime else ""))
    if any(s < 1 and s != -1 for s in shape):
        raise TileValueError(f"{what} {tuple(shape)} must have positive dimensions")
    return tuple(shape)


def const_axis(axis, ndim, what="axis"):
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TileTypeError(f"{what} must be a compile-time int, got {describe(axis)}")
    if not -ndim <= axis < max(ndim, 1):
        raise TileValueError(f"{what} {axis} is out of range for a tile of rank {ndim}; use an axis in "
                             f"[{-ndim}, {max(ndim, 1) - 1}]")
    return axis % max(ndim, 1)


def scalar_index(b, x, what="index") -> TileV:
    """An integer scalar usable as a load/store index or loop bound."""
    if isinstance(x, TileV):
        if x.shape != ():
            if all(s == 1 for s in x.shape):
                return TileV(b.one("reshape", [x.v], shape=()))
            raise TileTypeError(f"{what} must be a scalar, got {describe(x)}")
        if x.dtype.is_bool:
            return cast(b, x, D.int32)
        if not x.dtype.is_int:
            raise TileTypeError(f"{what} must be an integer, got {x.dtype.name}")
        return x
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise TileTypeError(f"{what} must be an integer, got {describe(x)}")
    return const(b, int(x), D.scalar_dtype(int(x)))


def tile_type_of(x) -> TileType:
    return x.type


def array_shape(b, arr: ArrayV):
    if arr.shape_values is None:
        arr.shape_values = tuple(TileV(b.one("array_dim", [arr.v], axis=i)) for i in range(arr.ndim))
    return arr.shape_values
