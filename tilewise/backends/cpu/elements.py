"""Element types in LLVM and conversions between them, mirroring reference/semantics.py bit for bit.

Every dtype has a memory type (how arrays and tile buffers hold it) and a register type (what ops
compute on): bool is i8 in memory and i1 in registers; bfloat16 stays raw i16 bits (LLVM's bfloat
arithmetic is not portable) and is widened to float32 by a shift; float16 is LLVM half, widened to
float32 for arithmetic so every op rounds once, as the reference does."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ...ir import dtypes as D
from ..reference import semantics as M
from . import float8
from .llvmutil import F32, F64, HALF, I1, I8, I16, I32, I64, PTR, intrinsic  # noqa: F401 - re-exported

NARROW = M.NARROW
FLOAT8 = (D.float8_e4m3fn, D.float8_e5m2)
_FLOAT_MEM = {D.float16: HALF, D.bfloat16: I16, D.float32: F32, D.tfloat32: F32, D.float64: F64,
              D.float8_e4m3fn: I8, D.float8_e5m2: I8}

def mem_type(dt):
    if dt.is_bool:
        return I8
    if dt.is_int:
        return ir.IntType(dt.bits)
    return _FLOAT_MEM[dt]


def reg_type(dt):
    return I1 if dt.is_bool else mem_type(dt)


def to_reg(b, raw, dt):
    return b.icmp_unsigned("!=", raw, I8(0)) if dt.is_bool else raw


def to_mem(b, v, dt):
    return b.zext(v, I8) if dt.is_bool else v


def compute_type(dt):
    """The float type arithmetic on `dt` runs in (narrow floats widen to float32)."""
    return F64 if dt is D.float64 else F32


def to_compute(b, v, dt):
    if dt is D.float16:
        return b.fpext(v, F32)
    if dt is D.bfloat16:
        return b.bitcast(b.shl(b.zext(v, I32), I32(16)), F32)
    if dt in FLOAT8:
        return float8.decode(b, v, dt)
    return v


def bf16_from_f32(b, f):
    """Round to nearest even, as ml_dtypes does; NaN keeps its sign and becomes the quiet NaN 0x7fc0."""
    u = b.bitcast(f, I32)
    rounded = b.lshr(b.add(b.add(u, I32(0x7FFF)), b.and_(b.lshr(u, I32(16)), I32(1))), I32(16))
    nan_bits = b.or_(b.and_(b.lshr(u, I32(16)), I32(0x8000)), I32(0x7FC0))
    return b.trunc(b.select(b.fcmp_unordered("uno", f, f), nan_bits, rounded), I16)


def _f32_round_to_odd(b, x):
    """float64 -> float32 rounding to odd: a following float32 -> float16/bfloat16 rounding then equals
    one direct rounding. (LLVM would turn a direct double -> half into a call to __truncdfhf2, which
    the JIT's process may not have.)"""
    r = b.fptrunc(x, F32)
    back = b.fpext(r, F64)
    fabs = intrinsic(b.module, "llvm.fabs", F64, [F64])
    too_big = b.fcmp_ordered(">", b.call(fabs, [back]), b.call(fabs, [x]))
    bits = b.bitcast(r, I32)
    toward_zero = b.select(too_big, b.sub(bits, I32(1)), bits)
    odd = b.bitcast(b.or_(toward_zero, I32(1)), F32)
    exact = b.fcmp_unordered("==", back, x)  # exact, or NaN
    return b.select(exact, r, odd)


def from_compute(b, v, dt):
    """A float32/float64 value rounded once to `dt`'s register form (bfloat16 via float32, like ml_dtypes)."""
    if dt is D.float16:
        return b.fptrunc(v if v.type == F32 else _f32_round_to_odd(b, v), HALF)
    if dt is D.bfloat16:
        return bf16_from_f32(b, v if v.type == F32 else _f32_round_to_odd(b, v))
    if dt in FLOAT8:
        return float8.encode(b, v if v.type == F32 else _f32_round_to_odd(b, v), dt)
    target = F64 if dt is D.float64 else F32
    if v.type == target:
        return v
    return b.fpext(v, target) if target == F64 else b.fptrunc(v, target)


def int_const(bits, value):
    value = int(value) & ((1 << bits) - 1)
    return ir.IntType(bits)(value - (1 << bits) if value >= 1 << (bits - 1) else value)


def const(dt, value):
    """The register constant for a host value already converted to `dt` by NumPy."""
    arr = np.asarray(value, dtype=dt.np)
    if dt.is_bool:
        return I1(int(bool(arr)))
    if dt.is_int:
        return int_const(dt.bits, int(arr))
    if dt is D.bfloat16 or dt in FLOAT8:
        return ir.IntType(dt.bits)(int(arr.view(np.uint16 if dt.bits == 16 else np.uint8)))
    return ir.Constant(mem_type(dt), float(arr))


def host_value(value, dt):
    """A Python scalar converted to `dt` the way the reference backend converts it."""
    try:
        return np.array(value, dtype=dt.np)
    except (OverflowError, ValueError):
        src = D.float64 if isinstance(value, float) else D.int64
        return M.cast(np.array(value, dtype=src.np), src, dt)


def ext64(b, v, dt):
    """An integer or bool register widened to i64 (by its signedness)."""
    if v.type == I64:
        return v
    return b.sext(v, I64) if dt.kind == "i" else b.zext(v, I64)


def _round_tf32(b, f):
    u = b.bitcast(f, I32)
    r = b.and_(b.add(b.add(u, I32(0xFFF)), b.and_(b.lshr(u, I32(13)), I32(1))), int_const(32, 0xFFFFE000))
    finite = b.fcmp_ordered("<", b.call(intrinsic(b.module, "llvm.fabs", F32, [F32]), [f]), F32(float("inf")))
    return b.select(finite, b.bitcast(r, F32), f)


def cast(b, v, src, dst):
    """reference.semantics.cast for one register value."""
    if src is dst or (src in (D.float32, D.tfloat32) and dst is D.float32):
        return v
    if dst.is_bool:
        if src.is_float:
            f = to_compute(b, v, src)
            return b.fcmp_unordered("!=", f, ir.Constant(f.type, 0.0))
        return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))
    if src.is_float and dst.is_int:
        f = to_compute(b, v, src)
        name = "llvm.fptosi.sat" if dst.kind == "i" else "llvm.fptoui.sat"
        t = ir.IntType(dst.bits)
        return b.call(intrinsic(b.module, name, t, [f.type], [t, f.type]), [f])
    if dst is D.tfloat32:
        return _round_tf32(b, _to_f32_odd(b, v, src))
    if dst in FLOAT8:
        return float8.encode(b, float8.saturate(b, _to_f32_odd(b, v, src), dst), dst)
    if dst is D.bfloat16 and (src.is_int and src.bits > 16):
        return bf16_from_f32(b, _to_f32_odd(b, v, src))
    if src.is_bool or src.is_int:
        if dst.is_int:
            if dst.bits < v.type.width:
                return b.trunc(v, ir.IntType(dst.bits))
            if dst.bits == v.type.width:
                return v
            return b.sext(v, ir.IntType(dst.bits)) if src.kind == "i" else b.zext(v, ir.IntType(dst.bits))
        conv = b.sitofp if src.kind == "i" else b.uitofp
        if dst in NARROW:  # via float32: exact for every integer a narrow float can hold finitely
            return from_compute(b, conv(v, F32), dst)
        return conv(v, mem_type(dst))
    # float -> float: narrow sources widen to float32 first (exact), then round once
    return from_compute(b, to_compute(b, v, src), dst)


def _to_f32_odd(b, v, src):
    """reference.semantics._to_float32_odd: float32, rounded to odd where float64 or a wide integer
    does not fit, so one more rounding (bf16, tf32) equals a single correct rounding."""
    if src is D.float64:
        return _f32_round_to_odd(b, v)
    if src.is_int and src.bits > 16:
        return _f32_round_to_odd(b, (b.sitofp if src.kind == "i" else b.uitofp)(v, F64))
    return cast(b, v, src, D.float32)


def bitcast(b, v, src, dst):
    """Reinterpret a register's bits (same width; bfloat16 registers are already i16 bits)."""
    return b.bitcast(v, mem_type(dst)) if mem_type(src) != mem_type(dst) else v
