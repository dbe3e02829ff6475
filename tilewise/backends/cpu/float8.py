"""float8_e4m3fn / float8_e5m2 <-> float32 in integer arithmetic (LLVM has no 8-bit float types).

Registers hold the raw byte. Encoding rounds to nearest even like ml_dtypes; values beyond the largest
finite one become NaN (e4m3fn, which has no infinity) or infinity (e5m2) unless the caller saturates
first, as casts do."""
from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as D
from .llvmutil import F32, I8, I32, intrinsic

# mantissa bits, exponent bias, encoding of an overflow, encoding of NaN (sign bit clear)
_FORMAT = {D.float8_e4m3fn: (3, 7, 0x7F, 0x7F), D.float8_e5m2: (2, 15, 0x7C, 0x7E)}


def decode(b, v, dt):
    """float8 bits (i8) -> float32, exactly."""
    mbits, bias, _, _ = _FORMAT[dt]
    u = b.zext(v, I32)
    sign = b.shl(b.and_(u, I32(0x80)), I32(24))
    mag = b.and_(u, I32(0x7F))
    exp = b.lshr(mag, I32(mbits))
    normal = b.shl(b.add(mag, I32((127 - bias) << mbits)), I32(23 - mbits))
    sub = b.fmul(b.uitofp(b.and_(mag, I32((1 << mbits) - 1)), F32), ir.Constant(F32, 2.0 ** (1 - bias - mbits)))
    bits = b.select(b.icmp_unsigned("==", exp, I32(0)), b.bitcast(sub, I32), normal)
    top = (1 << (7 - mbits)) - 1
    if dt is D.float8_e5m2:  # all-ones exponent: infinity or NaN, as in IEEE
        special = b.or_(I32(0x7F800000), b.shl(b.and_(mag, I32(3)), I32(21)))
        bits = b.select(b.icmp_unsigned("==", exp, I32(top)), special, bits)
    else:  # e4m3fn: only S.1111.111 is NaN
        bits = b.select(b.icmp_unsigned("==", mag, I32(0x7F)), I32(0x7FC00000), bits)
    return b.bitcast(b.or_(bits, sign), F32)


def encode(b, f, dt):
    """float32 -> float8 bits, rounding to nearest even."""
    mbits, bias, overflow, nan = _FORMAT[dt]
    bits = b.bitcast(f, I32)
    sign = b.and_(b.lshr(bits, I32(24)), I32(0x80))
    u = b.and_(bits, I32(0x7FFFFFFF))
    shift = 23 - mbits
    rounded = b.lshr(b.add(b.add(u, I32((1 << (shift - 1)) - 1)), b.and_(b.lshr(u, I32(shift)), I32(1))), I32(shift))
    normal = b.sub(rounded, I32((127 - bias) << mbits))
    normal = b.select(b.icmp_unsigned(">", normal, I32(overflow)), I32(overflow), normal)
    mag = b.call(intrinsic(b.module, "llvm.fabs", F32, [F32]), [f])
    scaled = b.fmul(mag, ir.Constant(F32, 2.0 ** (bias - 1 + mbits)))
    sub = b.fptoui(b.call(intrinsic(b.module, "llvm.roundeven", F32, [F32]), [scaled]), I32)
    tiny = b.fcmp_ordered("<", mag, ir.Constant(F32, 2.0 ** (1 - bias)))
    enc = b.select(tiny, sub, normal)
    enc = b.select(b.fcmp_unordered("uno", f, f), I32(nan), enc)
    return b.trunc(b.or_(enc, sign), I8)


def saturate(b, f, dt):
    """Clamp a float32 to the format's finite range, keeping NaN (casts saturate, like cvt.satfinite)."""
    import ml_dtypes
    hi = float(ml_dtypes.finfo(dt.np).max)
    f = b.select(b.fcmp_ordered(">", f, ir.Constant(F32, hi)), ir.Constant(F32, hi), f)
    return b.select(b.fcmp_ordered("<", f, ir.Constant(F32, -hi)), ir.Constant(F32, -hi), f)
