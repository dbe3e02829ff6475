"""C++ expressions for one element of each elementwise op, following reference/semantics.py exactly.

Every function takes operand expressions of the storage type of their dtype (`ctype`) and returns an
expression of the result's storage type. Narrow floats widen to float32 (double for transcendental
functions, as the reference does for float32 too) and round once; integers wrap (tilewise.cuh)."""
from __future__ import annotations

import math

import ml_dtypes
import numpy as np

from ...errors import TileUnsupportedError
from ...ir import dtypes as D

CTYPE = {D.bool_: "bool", D.int8: "tw_i8", D.int16: "tw_i16", D.int32: "tw_i32", D.int64: "tw_i64",
         D.uint8: "tw_u8", D.uint16: "tw_u16", D.uint32: "tw_u32", D.uint64: "tw_u64",
         D.float16: "tw_f16", D.bfloat16: "tw_bf16", D.float32: "float", D.tfloat32: "float", D.float64: "double",
         D.float8_e4m3fn: "tw_f8e4m3", D.float8_e5m2: "tw_f8e5m2"}
NARROW = {D.float16, D.bfloat16, D.float8_e4m3fn, D.float8_e5m2}
FP8 = {D.float8_e4m3fn, D.float8_e5m2}
_UNSIGNED = {8: "tw_u8", 16: "tw_u16", 32: "tw_u32", 64: "tw_u64"}


def ctype(dt):
    if dt not in CTYPE:
        raise TileUnsupportedError(f"the CUDA backend does not support dtype {dt.name} yet")
    return CTYPE[dt]


def _float_literal(x, ctype_):
    """An exact C literal of a float (hex for finite values, bit patterns for inf/NaN)."""
    if ctype_ == "float":
        bits = int(np.array(x, np.float32).view(np.uint32))
        return f"tw_f32_bits(0x{bits:08x}u)" if not math.isfinite(x) else f"{float(np.float32(x)).hex()}f"
    bits = int(np.array(x, np.float64).view(np.uint64))
    return f"tw_f64_bits(0x{bits:016x}ull)" if not math.isfinite(x) else float(x).hex()


def literal(value, dt):
    """`value` (a Python or NumPy scalar) converted to `dt` the way NumPy would, as a C++ expression."""
    v = np.array(value).astype(dt.np) if not isinstance(value, np.ndarray) else value.astype(dt.np)
    if dt.is_bool:
        return "true" if bool(v) else "false"
    if dt in NARROW:
        return f"{ctype(dt)}_bits(0x{int(v.view(np.uint8 if dt.bits == 8 else np.uint16)):04x}u)"
    if dt.is_float:
        return _float_literal(float(v), ctype(dt))
    n = int(v)
    if dt.kind == "u":
        return f"(({ctype(dt)}){n}ull)"
    if n == -2**63:
        return "((tw_i64)(-9223372036854775807LL - 1))"
    return f"(({ctype(dt)}){n}LL)"


def widen(x, dt, to=None):
    """x of dtype dt as a computation value: float for narrow floats (or `to`: "double")."""
    if dt in NARROW:
        x = f"tw_widen({x})"
        return f"(double){x}" if to == "double" else x
    if to == "double":
        return f"(double)({x})"
    return x


def astype(x, src_ct, dt):
    """NumPy's `.astype(dt)` of a computation value of C type `src_ct` ("float", "double", "tw_i64",
    "tw_u64", "bool"): plain C conversion, narrow floats rounded once (bf16 through float, as ml_dtypes)."""
    if dt in NARROW:
        return f"tw_narrow_{ctype(dt)[3:]}(({'double' if src_ct == 'double' else 'float'})({x}))"
    if dt.is_bool:
        return f"(({x}) != 0)"
    return f"(({ctype(dt)})({x}))"


_UNARY_F = {"exp": "exp", "exp2": "exp2", "log": "log", "log2": "log2", "log10": "log10", "log1p": "log1p",
            "expm1": "expm1", "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "sinh": "sinh",
            "cosh": "cosh", "asin": "asin", "acos": "acos", "atan": "atan", "erf": "erf"}
_UNARY_EXACT = {"floor": "floor", "ceil": "ceil", "trunc": "trunc", "round": "rint", "abs": "fabs", "sqrt": "sqrt"}


def unary(fn, x, dt):
    if fn in ("isnan", "isinf", "isfinite"):
        if not dt.is_float:
            return "true" if fn == "isfinite" else "false"
        return f"tw_{fn}({widen(x, dt)})"
    if dt.is_bool:  # only invert reaches here for bool (neg/abs/floor... are rejected by the type rule)
        return f"(!({x}))" if fn == "invert" else x
    if dt.is_int:
        if fn == "neg":
            return f"tw_ineg<{ctype(dt)}>({x})"
        if fn == "abs":
            return f"tw_iabs<{ctype(dt)}>({x})"
        if fn == "invert":
            return f"(({ctype(dt)})~({x}))"
        return x  # floor, ceil, trunc, round of an integer
    wide = dt is D.float64
    if fn in _UNARY_F or fn in ("rsqrt", "sigmoid"):
        w = widen(x, dt, "double")
        body = {"rsqrt": f"1.0 / sqrt({w})", "sigmoid": f"1.0 / (1.0 + exp(-({w})))"}.get(fn) or f"{_UNARY_F[fn]}({w})"
        return astype(body, "double", dt)
    w = widen(x, dt)
    if fn == "neg":
        body = f"(-({w}))"
    else:
        body = f"{_UNARY_EXACT[fn]}{'' if wide else 'f'}({w})"
    return astype(body, "double" if wide else "float", dt)


_OPS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "and": "&", "or": "|", "xor": "^",
        "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_CMP = {"eq", "ne", "lt", "le", "gt", "ge"}


def binary(fn, x, y, dt):
    ct = ctype(dt)
    if fn in _CMP:
        if dt.is_float:
            return f"({widen(x, dt)} {_OPS[fn]} {widen(y, dt)})"
        return f"({x} {_OPS[fn]} {y})"
    if dt.is_bool:
        return {"and": f"({x} && {y})", "or": f"({x} || {y})", "xor": f"({x} != {y})",
                "minimum": f"({x} && {y})", "maximum": f"({x} || {y})"}[fn]
    if dt.is_int:
        named = {"add": "tw_iadd", "sub": "tw_isub", "mul": "tw_imul", "floordiv": "tw_ifloordiv", "mod": "tw_imod",
                 "pow": "tw_ipow", "shl": "tw_shl", "shr": "tw_shr"}
        if fn in named:
            return f"{named[fn]}<{ct}>({x}, {y})"
        if fn in ("minimum", "maximum"):
            return f"tw_{'fmin' if fn == 'minimum' else 'fmax'}<{ct}>({x}, {y})"  # no NaN: plain min/max
        return f"(({ct})({x} {_OPS[fn]} {y}))"
    if fn in ("pow", "atan2"):
        return astype(f"{fn}({widen(x, dt, 'double')}, {widen(y, dt, 'double')})", "double", dt)
    wt = "double" if dt is D.float64 else "float"
    wx, wy = widen(x, dt), widen(y, dt)
    if fn in _OPS:
        body = f"({wx} {_OPS[fn]} {wy})"
    else:
        body = {"floordiv": "tw_ffloordiv", "mod": "tw_fmod", "minimum": "tw_fmin", "maximum": "tw_fmax"}[fn] + \
            f"<{wt}>({wx}, {wy})"
    return astype(body, wt, dt)


def cast(x, src, dst):
    """The language's cast (reference semantics.cast): saturating float->int with NaN -> 0, and
    single-rounding into bf16/tf32 through round-to-odd float32."""
    if src is dst:
        return x
    ctype(dst)
    if dst.is_bool:
        return f"({widen(x, src)} != 0)"
    if src.is_float and dst.is_int:
        return f"tw_f2i<{ctype(dst)}>((double)({widen(x, src)}))"
    if dst in (D.tfloat32, D.bfloat16) and not (src.is_bool or src in NARROW):
        odd = src is D.float64 or (src.is_int and src.bits > 16)
        f32 = f"tw_f32_odd((double)({x}))" if odd else f"((float)({x}))"
        return f"tw_round_tf32({f32})" if dst is D.tfloat32 else f"tw_narrow_bf16({f32})"
    if dst is D.tfloat32:
        return f"tw_round_tf32((float)({widen(x, src)}))"
    if dst in FP8:
        odd = src is D.float64 or (src.is_int and src.bits > 16)
        f32 = f"tw_f32_odd((double)({x}))" if odd else f"((float)({widen(x, src)}))"
        hi = float(ml_dtypes.finfo(dst.np).max)
        return f"tw_narrow_{ctype(dst)[3:]}(tw_satfinite({f32}, {hi.hex()}f))"
    if src.is_bool:
        return astype(f"(({x}) ? 1.0f : 0.0f)", "float", dst) if dst in NARROW else f"(({ctype(dst)})({x}))"
    if src in NARROW:
        return astype(widen(x, src), "float", dst)
    if dst is D.float16:
        return astype(x, "double" if src is D.float64 else "float", dst)
    return f"(({ctype(dst)})({x}))"


def bitcast(x, src, dst):
    if src.is_bool or dst.is_bool:
        if not (src.is_bool and dst.is_bool):
            raise TileUnsupportedError("bitcast between bool and another dtype is not supported by the CUDA backend")
        return x
    return f"tw_bitcast<{ctype(dst)}>({x})"


def unsigned_of(dt):
    return _UNSIGNED[dt.bits]
