"""Element-level semantics of every op, written with NumPy: the executable definition of the
language (docs/semantics.md says the same in words). Arrays here carry a leading block axis."""
from __future__ import annotations

import math
import os

import ml_dtypes
import numpy as np

from ...ir import dtypes as D

NARROW = {D.float16, D.bfloat16, D.float8_e4m3fn, D.float8_e5m2}


def compute_dtype(dt, transcendental=False):
    """Narrow floats compute in float32 and round once; float32 transcendentals use float64."""
    if dt in NARROW:
        return np.float32 if not transcendental else np.float64
    if dt in (D.float32, D.tfloat32) and transcendental:
        return np.float64
    return dt.np


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x) if x.size else x.astype(np.float64)


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


UNARY_FLOAT = {"exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "log10": np.log10,
               "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt, "rsqrt": lambda x: 1.0 / np.sqrt(x),
               "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
               "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "sigmoid": _sigmoid, "erf": _erf}
UNARY_OTHER = {"neg": np.negative, "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "trunc": np.trunc,
               "round": np.rint, "invert": np.invert, "isnan": np.isnan, "isinf": np.isinf,
               "isfinite": np.isfinite}


def unary(fn, x, dt):
    if fn in ("isnan", "isinf", "isfinite"):
        return UNARY_OTHER[fn](x.astype(np.float32) if dt in NARROW else x)
    exact = fn in ("sqrt",)  # correctly rounded in the compute dtype already
    work = x.astype(compute_dtype(dt, transcendental=fn in UNARY_FLOAT and not exact))
    out = (UNARY_FLOAT.get(fn) or UNARY_OTHER[fn])(work)
    return out.astype(dt.np)


def _int_div(x, y, fn):
    safe = np.where(y == 0, 1, y)
    out = np.floor_divide(x, safe) if fn == "floordiv" else np.mod(x, safe)
    return np.where(y == 0, 0, out)


def _int_pow(x, y, dt):
    neg = y < 0
    out = np.power(x, np.where(neg, 0, y).astype(x.dtype))
    inv = np.where(x == 1, 1, np.where(x == -1, np.where(y % 2 == 0, 1, -1), 0)).astype(x.dtype) \
        if dt.kind == "i" else np.where(x == 1, 1, 0).astype(x.dtype)
    return np.where(neg, inv, out)


def _shift(x, y, fn, dt):
    big = (y < 0) | (y >= dt.bits)
    ys = np.where(big, 0, y).astype(x.dtype)
    if fn == "shl":
        return np.where(big, 0, np.left_shift(x, ys))
    fill = np.where(x < 0, -1, 0).astype(x.dtype) if dt.kind == "i" else np.zeros_like(x)
    return np.where(big, fill, np.right_shift(x, ys))


_ARITH = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
          "floordiv": np.floor_divide, "mod": np.mod, "minimum": np.minimum, "maximum": np.maximum,
          "and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor, "eq": np.equal,
          "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal}


def binary(fn, x, y, dt):
    if dt.is_int:
        if fn in ("floordiv", "mod"):
            return _int_div(x, y, fn)
        if fn == "pow":
            return _int_pow(x, y, dt)
        if fn in ("shl", "shr"):
            return _shift(x, y, fn, dt)
    if dt.is_float:
        trans = fn in ("pow", "atan2")
        cd = compute_dtype(dt, trans)
        x, y = x.astype(cd, copy=False), y.astype(cd, copy=False)  # no copy when already cd
        if fn == "pow":
            out = np.power(x, y)
        elif fn == "atan2":
            out = np.arctan2(x, y)
        else:
            out = _ARITH[fn](x, y)
        return out if out.dtype == np.bool_ else out.astype(dt.np, copy=False)
    return _ARITH[fn](x, y)


def _round_tf32(x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32)
    finite = np.isfinite(x)
    r = ((u + np.uint32(0xFFF) + ((u >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000))
    return np.where(finite, r.view(np.float32), x)


def cast(x, src, dst):
    if src is dst:
        return x
    if dst is D.bool_:
        return x.astype(np.float32) != 0 if src in NARROW else x != 0
    if src.is_float and dst.is_int:
        f = np.trunc(x.astype(np.float64))
        info = np.iinfo(dst.np)
        f = np.clip(np.nan_to_num(f, nan=0.0, posinf=info.max, neginf=info.min), info.min, info.max)
        if dst.bits < 64:
            return f.astype(dst.np)
        # float64 cannot hold a 64-bit max exactly (it rounds up to 2**63 or 2**64, which overflows the
        # conversion): saturate those lanes in the integer domain
        big = f >= float(info.max)
        return np.where(big, np.array(info.max, dst.np), np.where(big, 0.0, f).astype(dst.np))
    if dst is D.tfloat32:
        return _round_tf32(_to_float32_odd(x, src))
    if dst in (D.float8_e4m3fn, D.float8_e5m2):
        hi = float(ml_dtypes.finfo(dst.np).max)
        f = _to_float32_odd(x, src)
        return np.where(np.isnan(f), f, np.clip(f, -hi, hi)).astype(dst.np)  # saturate, like cvt.satfinite
    if src.is_bool:
        return x.astype(dst.np)
    if src in NARROW and dst.is_float:
        return x.astype(np.float32).astype(dst.np)
    if dst is D.bfloat16:
        return _to_float32_odd(x, src).astype(dst.np)
    return x.astype(dst.np)


def _to_float32_odd(x, src):
    """x as float32, rounded to odd when inexact: a later round-to-nearest-even into a type of at most 22
    significant bits (bf16, tf32, fp8) then equals one correct rounding of x. A plain float32 rounding
    first would round twice (float64 1 + 2**-8 + 2**-40 would become bf16 1.0 instead of 1 + 2**-7)."""
    if not (src is D.float64 or (src.is_int and src.bits > 16)):
        return x.astype(np.float32)  # exact
    wide = x.astype(np.float64)
    r = wide.astype(np.float32)
    even = (r.view(np.uint32) & np.uint32(1)) == 0
    fix = even & np.isfinite(r) & (r.astype(np.float64) != wide)
    toward = np.where(wide > r, np.float32(np.inf), np.float32(-np.inf))
    return np.where(fix, np.nextafter(r, toward), r)


def bitcast(x, dst):
    return np.ascontiguousarray(x).view(dst.np)


def padding_value(mode, dt):
    if mode == "undetermined":
        if os.environ.get("TILEWISE_POISON") == "1":
            return np.nan if dt.is_float else (np.iinfo(dt.np).max if dt.is_int else True)
        return 0
    return {"zero": 0, "neg_zero": -0.0, "nan": np.nan, "pos_inf": np.inf, "neg_inf": -np.inf}[mode]


def reduce(fn, x, axes, keepdims, dt):
    ax = tuple(a + 1 for a in axes)  # skip the block axis
    if fn in ("argmax", "argmin"):
        f = x.astype(np.float32) if dt in NARROW else x
        out = (np.argmax if fn == "argmax" else np.argmin)(f, axis=ax[0], keepdims=keepdims)
        return out.astype(np.int32)
    if dt.is_float:
        acc = np.float64
    else:
        acc = dt.np
    work = x.astype(acc)
    out = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[fn](work, axis=ax, keepdims=keepdims)
    return out.astype(dt.np)


def scan(fn, x, axis, dt):
    acc = np.float64 if dt.is_float else dt.np
    f = np.cumsum if fn == "cumsum" else np.cumprod
    return f(x.astype(acc), axis=axis + 1).astype(dt.np)


def matmul(a, b, acc, in_dt, out_dt):
    work = np.float64 if in_dt.is_float else np.int64
    out = np.matmul(a.astype(work), b.astype(work))
    if acc is not None:
        out = out + acc.astype(work)
    return cast(out, D.float64 if in_dt.is_float else D.int64, out_dt)
