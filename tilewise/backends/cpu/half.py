"""float16 conversions for x86-64 targets without F16C (x86-64 and x86-64-v2 levels, older CPUs).

There LLVM turns every float <-> half conversion into a call to `__extendhfsf2` / `__truncsfhf2`, which
live in libgcc or compiler-rt and are not in a Python process to resolve against: the kernel would not
load (or, through MCJIT, would jump to address 0). Each module that needs them gets its own definitions,
in integer and float32 arithmetic only, so nothing in them calls back into a libcall. Both are exact:
half -> float is exact, float -> half rounds to nearest even as NumPy does (NaN stays NaN with its sign,
as the quiet NaN 0x7e00; overflow goes to infinity; subnormals round once). The float-add trick for
subnormals is the one from F. Giesen's "float_to_half_fast3_rtne"."""
from __future__ import annotations

from llvmlite import ir

from .llvmutil import F32, HALF, I16, I32

EXTEND, TRUNC = "__extendhfsf2", "__truncsfhf2"


def needed(module_text):
    return "half" in module_text


def define(module):
    """Add both functions to `module` (kept whether or not the IR calls them: LLVM calls them itself)."""
    _extend(ir.Function(module, ir.FunctionType(F32, [HALF]), EXTEND))
    _trunc(ir.Function(module, ir.FunctionType(HALF, [F32]), TRUNC))


def _f32(b, bits):
    return b.bitcast(bits, F32)


def _extend(f):
    b = ir.IRBuilder(f.append_basic_block("entry"))
    h = b.zext(b.bitcast(f.args[0], I16), I32)
    o = b.shl(b.and_(h, I32(0x7FFF)), I32(13))      # exponent and mantissa, in float's place
    exp = b.and_(o, I32(0x7C00 << 13))
    o = b.add(o, I32((127 - 15) << 23))              # rebias
    inf_nan = b.add(o, I32((128 - 16) << 23))        # exponent 31 -> 255
    # subnormal (or zero): one more exponent step, then subtract 2^-14 exactly
    sub = b.bitcast(b.fsub(_f32(b, b.add(o, I32(1 << 23))), _f32(b, I32(113 << 23))), I32)
    o = b.select(b.icmp_unsigned("==", exp, I32(0x7C00 << 13)), inf_nan,
                 b.select(b.icmp_unsigned("==", exp, I32(0)), sub, o))
    b.ret(_f32(b, b.or_(o, b.shl(b.and_(h, I32(0x8000)), I32(16)))))


def _trunc(f):
    b = ir.IRBuilder(f.append_basic_block("entry"))
    u = b.bitcast(f.args[0], I32)
    sign = b.and_(u, I32(0x80000000))
    a = b.xor(u, sign)                               # |x|
    big = b.select(b.icmp_unsigned(">", a, I32(0x7F800000)), I32(0x7E00), I32(0x7C00))  # NaN, else inf
    # |x| < 2^-14: add 0.5 (ulp 2^-24, half's subnormal step) and let the float adder round to nearest even
    magic = I32(((127 - 15) + (23 - 10) + 1) << 23)
    small = b.sub(b.bitcast(b.fadd(_f32(b, a), _f32(b, magic)), I32), magic)
    # normal: rebias, then round the 13 dropped bits to nearest even (a carry may reach infinity: right)
    odd = b.and_(b.lshr(a, I32(13)), I32(1))
    normal = b.lshr(b.add(b.add(a, I32(((15 - 127) << 23) + 0xFFF)), odd), I32(13))
    o = b.select(b.icmp_unsigned(">=", a, I32((127 + 16) << 23)), big,
                 b.select(b.icmp_unsigned("<", a, I32(113 << 23)), small, normal))
    o = b.or_(o, b.lshr(sign, I32(16)))
    b.ret(b.bitcast(b.trunc(o, I16), HALF))
