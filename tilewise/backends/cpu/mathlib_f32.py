"""float32 sin and cos for the cpu backend, computed in float32 vectors (see mathlib.py).

Going through the float64 code halves the vector lanes and runs a float64 Payne-Hanek reduction on
every element (selects compute both reductions), which made float32 sin about 3x slower per element
than NumPy's. Here one reduction serves every finite float32: |x| < pi/4 needs none, and from pi/4
up the integer reduction of ARM's optimized-routines sinf (a 32 x 96-bit product with a window of
2/pi taken by exponent: the exact 2.62-bit fixed-point value of |x| 2/pi mod 4), whose remainder has
at most 29 leading zeros over all float32, so it keeps 33 significant bits. Only that product, its
conversion and one multiply are 64-bit; the polynomials run in float32 on the remainder as a
float32 pair, with the leading term exact so the result rounds about once: 0.76 ulp at most,
measured against the float64 functions over every finite float32 (tests/test_cpu_mathlib.py keeps
a dense sample of that check).
"""
from __future__ import annotations

import math

from llvmlite import ir

from .llvmutil import F32, F64, I32, I64

# (sin r - r) / r^3 and (cos r - 1 + r^2/2) / r^4 as polynomials in r^2 on |r| <= pi/4 (+ 0.2%):
# weighted least squares on Chebyshev nodes, coefficients rounded to float32; relative error of the
# polynomial itself below 0.07 * 2**-24.
SIN_F32 = (-0.1666666716337204, 0.008333329111337662, -0.00019839333253912628, 2.718261839618208e-06)
COS_F32 = (0.0416666679084301, -0.0013888883404433727, 2.479944123479072e-05, -2.7204154662285873e-07)


def two_over_pi(nbits):
    """floor(2/pi * 2**nbits), from Machin's formula in integers with 64 guard bits (both argument
    reductions, this module's and mathlib.py's Payne-Hanek, read their bits of 2/pi from it)."""
    g = nbits + 64
    one = 1 << g

    def arccot(n):  # atan(1/n) 2**g
        total = term = one // n
        k, sign = 3, -1
        while term:
            term //= n * n
            total += sign * (term // k)
            k, sign = k + 2, -sign
        return total
    pi = 4 * (4 * arccot(5) - arccot(239))
    return (2 << (g + nbits)) // pi


def _inv_pio4_table():
    """Entry j + 1 = floor(2/pi 2**(8j + 8)) mod 2**32 for j in [-1, 23] (entry 0 is the leading zeros
    that exponents 120..127 reach), as unsigned bit patterns stored in i32."""
    bits = 8 * 24 + 8
    k = two_over_pi(bits)
    out = [0]
    for j in range(24):
        v = (k >> (bits - (8 * j + 8))) & 0xFFFFFFFF
        out.append(v - (1 << 32) if v >= 1 << 31 else v)
    return tuple(out)


_PI63 = math.pi / 2 * 2.0 ** -62


def _rows(m, row):
    """The table's entries row, row + 4 and row + 8 for row in [0, 16], by a tree of selects on the
    bits of row: a gather per word made 10**7 float32 sin take 15 ms instead of 10.8 (AVX-512, 2 threads)."""
    b = m.b
    table = _inv_pio4_table()
    bit = [b.trunc(b.lshr(row, m.i(k)), ir.IntType(1)) for k in range(5)]

    out = []
    for j in range(3):
        vals = [table[r + 4 * j] for r in range(17)]
        level = [m.i(v) for v in vals[:16]]
        for k in range(4):  # pairs differing in bit k
            level = [b.select(bit[k], level[i + 1], level[i]) for i in range(0, len(level), 2)]
        out.append(b.select(bit[4], m.i(vals[16]), level[0]))
    return out


def _reduce(m, ax):
    """|x| = q pi/2 + rh + rl for finite |x| >= pi/4 (garbage, never UB, below and for inf/NaN):
    (q's low bits as i32, rh, rl) with |rh| <= pi/4 and rl below ulp(rh)."""
    b = m.b
    xi = m.bits(ax)
    row = b.sub(b.lshr(xi, m.i(26)), m.i(15))  # exponent >> 3, from 120 up: 0..16
    row = b.select(b.icmp_signed("<", row, m.i(0)), m.i(0), row)
    t0, t1, t2 = _rows(m, row)
    shift = b.and_(b.lshr(xi, m.i(23)), m.i(7))
    mant = b.shl(b.or_(b.and_(xi, m.i(0x7FFFFF)), m.i(0x800000)), shift)  # below 2**31
    c64 = lambda v: ir.Constant(I64, v)  # noqa: E731
    m64 = b.zext(mant, I64)
    # bits at weights 2**64 and up are multiples of 4 (drop), so only the low word of mant * t0 counts
    res = b.or_(b.shl(b.zext(b.mul(mant, t0), I64), c64(32)), b.lshr(b.mul(m64, b.zext(t2, I64)), c64(32)))
    res = b.add(res, b.mul(m64, b.zext(t1, I64)))
    n = b.lshr(b.add(res, c64(1 << 61)), c64(62))
    frac = b.sub(res, b.shl(n, c64(62)))  # signed fraction in [-1/2, 1/2) 2**62
    r = b.fmul(b.sitofp(frac, F64), ir.Constant(F64, _PI63))
    rh = b.fptrunc(r, F32)
    rl = b.fptrunc(b.fsub(r, b.fpext(rh, F64)), F32)
    return b.trunc(n, I32), rh, rl


def sincos_r(m, rh, rl, sin_poly=SIN_F32, cos_poly=COS_F32):
    """sin and cos of rh + rl (|rh| <= pi/4), each as an unrounded pair (head, tail): the leading term
    exact and the rest, rl's share included, in the tail, so sin, cos and their quotient round (almost)
    once. The float64 code (mathlib.py) calls it with its own polynomials."""
    z = m.mul(rh, rh)
    ze = m.fma(rh, rh, m.b.fneg(z))
    st = m.fma(m.mul(rh, z), m.poly(z, sin_poly), m.mul(rl, m.fma(z, -0.5, 1.0)))
    hz = m.mul(z, 0.5)
    w = m.sub(1.0, hz)  # cos = w + ((1 - w) - hz) - ze/2 + z^2 P(z) - rh rl
    rest = m.fma(m.mul(z, z), m.poly(z, cos_poly), m.fma(ze, -0.5, m.b.fneg(m.mul(rh, rl))))
    ct = m.add(m.sub(m.sub(1.0, w), hz), rest)
    return (rh, st), (w, ct)


def trig(which):
    def build(m, x):
        b = m.b
        ax = m.fabs(x)
        q, rh, rl = _reduce(m, ax)
        small = m.lt(ax, math.pi / 4)
        q = b.select(small, m.i(0), q)
        rh, rl = m.sel(small, ax, rh), m.sel(small, 0.0, rl)
        s, c = sincos_r(m, rh, rl)
        if which == "cos":
            q = b.add(q, m.i(1))  # cos x = sin(|x| + pi/2)
        odd = b.trunc(q, ir.IntType(1))
        v = m.sel(odd, m.add(*c), m.add(*s))
        flip = b.trunc(b.lshr(q, m.i(1)), ir.IntType(1))
        if which == "sin":  # sin x = -sin |x| for x < 0 (and -0 for -0)
            flip = b.xor(flip, b.icmp_signed("<", m.bits(x), m.i(0)))
        res = m.sel(flip, b.fneg(v), v)
        return m.sel(m.lt(ax, math.inf), res, m.sub(x, x))  # inf - inf and NaN - NaN: NaN
    return build


FUNCTIONS = {"sin": trig("sin"), "cos": trig("cos")}
