"""Vectorisable math functions for the cpu backend, written as straight-line LLVM IR.

LLVM lowers llvm.exp, llvm.sin, ... to scalar libm calls, and a loop with a call in it does not
vectorise. Here each function is plain arithmetic (fma, bitcasts, integer ops, selects; no calls, no
branches) in an internal always-inlined function, so the loop vectoriser widens it like an add.
Methods are the classic ones (Cody-Waite range reduction, then a polynomial; specials by select;
Payne-Hanek for large trig arguments, its table of 2/pi read by index).
Coefficients were fitted once, offline, with mpmath.chebyfit (near-minimax) on the reduced ranges.

exp, exp2, expm1, log, log2, log10, log1p, tanh and sigmoid run natively in float32 and float64,
sin and cos too (their float32 code is in mathlib_f32.py); the others run float32 through the
float64 code (widen, compute, round once), which is nearly correctly rounded and makes float32
range reduction exact. Measured ulp bounds: docs/semantics.md."""
from __future__ import annotations

import math

from llvmlite import ir

from . import mathlib_f32 as _mathlib_f32
from .llvmutil import F32, F64, I32, I64, intrinsic

# ---- coefficients, lowest degree first (see the module docstring) ---------------------------------
EXP_F64 = (
    0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333325973, 0.0013888888888883633,
    0.0001984126987538548, 2.480158732595111e-05, 2.7557254685728803e-06, 2.755727313289604e-07,
    2.5105513541847086e-08, 2.0914898727175524e-09)
EXP_F32 = (
    0.5000000013692557, 0.1666666668187505, 0.041666462666195954, 0.008333310674603188, 0.0013933900050040087,
    0.00019891268510107283)
EXP2_F64 = (
    0.6931471805599453, 0.24022650695910072, 0.05550410866482158, 0.009618129107628484, 0.0013333558146428445,
    0.0001540353039336245, 1.525273380405099e-05, 1.3215486816311955e-06, 1.0178086021329605e-07,
    7.054894247966286e-09, 4.445530245174007e-10, 2.573378928044613e-11, 1.3717064479250784e-12)
EXP2_F32 = (
    0.6931471805599453, 0.24022650925021063, 0.055504108841199315, 0.009618056096717177, 0.0013333501938341237,
    0.00015461676975973325, 1.5297502543635438e-05)
LOG_F64 = (
    0.6666666666666666, 0.3999999999999999, 0.28571428571435464, 0.22222222219827728, 0.18181818598169913,
    0.1538457477813401, 0.13335653976459466, 0.11687780989571862, 0.1188509934324957)
LOG_F32 = (
    0.6666666655352537, 0.4000012263369878, 0.2855073084477381, 0.2333291280436864)
SIN_F64 = (
    -0.16666666666666666, 0.008333333333333333, -0.00019841269841269839, 2.7557319223981077e-06,
    -2.5052108382377827e-08, 1.6059042777921172e-10, -7.646960948071416e-13, 2.791224100841561e-15)
COS_F64 = (
    0.041666666666666664, -0.001388888888888889, 2.4801587301587298e-05, -2.755731922398348e-07,
    2.0876756986335384e-09, -1.1470745068029556e-11, 4.779375897774338e-14, -1.5518009109180316e-16)
ASIN_F64 = (
    0.16666666666666666, 0.07500000000000001, 0.044642857142854896, 0.030381944444744974, 0.022372159069840483,
    0.017352765313989122, 0.013964819093904957, 0.011552270675713022, 0.009755249440263935, 0.00845263412545028,
    0.006868000082946958, 0.008747626096338083, -0.0027373541914480107, 0.026534461476702034, -0.02934085752120775,
    0.03210298956952057)
ATAN_F64 = (
    -0.3333333333333333, 0.19999999999999998, -0.14285714285713783, 0.11111111111072487, -0.09090909089327497,
    0.07692307652354397, -0.06666665986700909, 0.05882344675752749, -0.052630831181747495, 0.04761385807733405,
    -0.04344999153083414, 0.03987695422352289, -0.03660297230514548, 0.033227095808228475, -0.02924873550317781,
    0.024269112559756736, -0.018341328800601277, 0.012167235511438728, -0.006819366840141999, 0.0030987148608386337,
    -0.0010861663193483609, 0.000273767880776564, -4.395646691349445e-05, 3.3659824212222273e-06)
ERF_F64 = (
    1.1283791670955126, -0.37612638903183754, 0.1128379167095512, -0.02686617064512984, 0.0052239776254232985,
    -0.000854832702193483, 0.00012055332902888736, -1.4925647567519332e-05, 1.6462045441468418e-06,
    -1.6364642158167616e-07, 1.4792401209404813e-08, -1.216456005728345e-09, 8.709045129053106e-11,
    -4.230945824295338e-12)
ERFCX_F64 = (  # (centre, coefficients in |x| - centre) on [1, 2), [2, 3.5), [3.5, 6)
    (1.5, (
        0.3215854164543175, -0.16362291773256007, 0.0761510398554774, -0.03293090529956263, 0.013377340953066716,
        -0.005145957547986074, 0.0018861348770299853, -0.0006619300663780329, 0.00022330994434483764,
        -7.265892277607512e-05, 2.2864312354813184e-05, -6.9749857220380816e-06, 2.066969345938349e-06,
        -5.961184927787341e-07, 1.6755851115553425e-07, -4.583649892893367e-08, 1.2292390627233347e-08,
        -3.491946397137101e-09, 8.944646826979908e-10)),
    (2.75, (
        0.1936620962790687, -0.06323763756063484, 0.019758592987322864, -0.00593433789699794, 0.001719581885289207,
        -0.00048219508498219585, 0.00013118180053067117, -3.469860956161284e-05, 8.940156044547683e-06,
        -2.247373556995042e-06, 5.519758471754133e-07, -1.3262487919431325e-07, 3.12091952072968e-08,
        -7.201501162812768e-09, 1.6302235225106995e-09, -3.5990737666663663e-10, 7.867423027390969e-11,
        -1.9151842409818204e-11, 4.036096437785138e-12)),
    (4.75, (
        0.11630270721024731, -0.023503448598163154, 0.004661326368972341, -0.000908098897029584,
        0.00017392830404063835, -3.277578113583005e-05, 6.081114550571976e-06, -1.1115677139671447e-06,
        2.0029196903709305e-07, -3.5595764153210864e-08, 6.242436753087514e-09, -1.0807335772599074e-09,
        1.8479899143619823e-10, -3.1249063672277586e-11, 5.218027402895151e-12, -8.455145736999659e-13,
        1.3818718062031088e-13, -2.746518674187926e-14, 4.375213208037101e-15)),
)


# Cody-Waite splits (computed with mpmath): the high parts have trailing zero bits, so k * hi is exact
# for every k we meet; hi + lo carries about twice the working precision.
_LN2 = {64: (0.6931471803691238, 1.9082149292705877e-10), 32: (0.693145751953125, 1.4286068203094173e-06)}
_LOG10_2 = {64: (0.30102999566361177, 3.694239077158931e-13), 32: (0.301025390625, 4.605038981195214e-06)}
_INV_LN2 = {64: (1.4426950216293335, 1.9259629911266175e-08), 32: (1.4423828125, 0.00031222838896340733)}
_INV_LN10 = {64: (0.4342944771051407, 4.798111141615973e-09), 32: (0.4342041015625, 9.038034075182765e-05)}
_PIO2 = (1.5707963267948966, 6.123233995736766e-17)
_PIO2_3 = (1.5707963267948966, 6.123233995736766e-17, -1.4973849048591698e-33)  # for fma: 53 bits each


class _M:
    """Arithmetic on one float type (float or double), spelled compactly for the builders below."""

    def __init__(self, b, t):
        self.b, self.t = b, t
        self.w = 64 if t == F64 else 32
        self.it = I64 if self.w == 64 else I32
        self.mant = 52 if self.w == 64 else 23
        self.bias = 1023 if self.w == 64 else 127
        self.magic = 1.5 * 2.0 ** self.mant  # x + magic - magic rounds x to an integer, for |x| < 2**(mant-1)

    def c(self, x):
        return ir.Constant(self.t, x)

    def i(self, x):
        return ir.Constant(self.it, x)

    def _k(self, x):
        return x if isinstance(x, ir.Value) else self.c(x)

    def add(self, x, y):
        return self.b.fadd(self._k(x), self._k(y))

    def sub(self, x, y):
        return self.b.fsub(self._k(x), self._k(y))

    def mul(self, x, y):
        return self.b.fmul(self._k(x), self._k(y))

    def div(self, x, y):
        return self.b.fdiv(self._k(x), self._k(y))

    def fma(self, x, y, z):
        f = intrinsic(self.b.module, "llvm.fma", self.t, [self.t] * 3)
        return self.b.call(f, [self._k(x), self._k(y), self._k(z)])

    def _intr(self, name, *args):
        return self.b.call(intrinsic(self.b.module, name, self.t, [self.t] * len(args)), [self._k(a) for a in args])

    def fabs(self, x):
        return self._intr("llvm.fabs", x)

    def copysign(self, x, y):
        return self._intr("llvm.copysign", x, y)

    def sqrt(self, x):
        return self._intr("llvm.sqrt", x)

    def poly(self, x, cs):
        acc = self.c(cs[-1])
        for k in reversed(cs[:-1]):
            acc = self.fma(acc, x, k)
        return acc

    def sel(self, cond, x, y):
        return self.b.select(cond, self._k(x), self._k(y))

    def lt(self, x, y):
        return self.b.fcmp_ordered("<", self._k(x), self._k(y))

    def le(self, x, y):
        return self.b.fcmp_ordered("<=", self._k(x), self._k(y))

    def gt(self, x, y):
        return self.b.fcmp_ordered(">", self._k(x), self._k(y))

    def ge(self, x, y):
        return self.b.fcmp_ordered(">=", self._k(x), self._k(y))

    def eq(self, x, y):
        return self.b.fcmp_ordered("==", self._k(x), self._k(y))

    def isnan(self, x):
        return self.b.fcmp_unordered("uno", x, x)

    def bits(self, x):
        return self.b.bitcast(x, self.it)

    def flt(self, i):
        return self.b.bitcast(i, self.t)

    def rint(self, x):
        """(rounded x, its integer bits): valid for |x| < 2**(mant-1); garbage, not UB, beyond."""
        k = self.add(x, self.magic)
        return self.sub(k, self.magic), self.b.sub(self.bits(k), self.i(_bits(self.magic, self.w)))

    def to_float(self, k):
        return self.sub(self.flt(self.b.add(k, self.i(_bits(self.magic, self.w)))), self.magic)

    def pow2(self, n):
        return self.flt(self.b.shl(self.b.add(n, self.i(self.bias)), self.i(self.mant)))

    def ldexp(self, p, n):
        """p * 2**n in two exact steps, so n may reach the subnormal range; one rounding at the end."""
        n1 = self.b.ashr(n, self.i(1))
        return self.mul(self.mul(p, self.pow2(n1)), self.pow2(self.b.sub(n, n1)))

    def clamp(self, x, lo, hi):
        return self.sel(self.lt(x, lo), lo, self.sel(self.gt(x, hi), hi, x))


def _bits(x, w):
    import struct
    return struct.unpack("<q" if w == 64 else "<i", struct.pack("<d" if w == 64 else "<f", x))[0]


def _coef(m, table64, table32):
    return table64 if m.w == 64 else table32


# ---- exponentials --------------------------------------------------------------------------------

def _exp_reduce(m, hi, lo=None):
    """hi (+ lo) = k ln2 + r, |r| <= ln2/2 (+ tiny); hi already clamped to a finite range."""
    kf, k = m.rint(m.mul(hi, 1.4426950408889634))
    l2hi, l2lo = _LN2[m.w]
    r = m.fma(m.b.fneg(kf), l2hi, hi)
    r = m.fma(m.b.fneg(kf), l2lo, r)
    if lo is not None:
        r = m.add(r, lo)
    return k, r


def _expm1_r(m, r):
    """e**r - 1 for |r| <= ln2/2 (+ tiny)."""
    return m.fma(m.mul(r, r), m.poly(r, _coef(m, EXP_F64, EXP_F32)), r)


def _exp_dd(m, hi, lo=None):
    """e**(hi + lo); overflow gives inf, underflow rounds into the subnormals correctly (one rounding)."""
    big, small = (710.0, -746.0) if m.w == 64 else (89.0, -104.0)
    ok = m.b.and_(m.le(hi, big), m.ge(hi, small))
    h = m.clamp(hi, small, big)
    k, r = _exp_reduce(m, h, None if lo is None else m.sel(ok, lo, 0.0))
    return m.ldexp(m.add(_expm1_r(m, r), 1.0), k)


def _exp(m, x):
    return _exp_dd(m, x)


def _exp2(m, x):
    lo, hi = (-1080.0, 1025.0) if m.w == 64 else (-152.0, 129.0)
    kf, k = m.rint(m.clamp(x, lo, hi))
    r = m.sub(m.clamp(x, lo, hi), kf)
    p = m.fma(r, m.poly(r, _coef(m, EXP2_F64, EXP2_F32)), 1.0)
    return m.ldexp(p, k)


def _expm1(m, x):
    """2**k (e**r - 1) + (2**k - 1), written as 2 (2**(k-1) em1 + (2**(k-1) - 1/2)) so that the
    subtraction is exact and 2**(k-1) cannot overflow before the result does."""
    lo, hi = (-45.0, 710.0) if m.w == 64 else (-20.0, 89.0)
    k, r = _exp_reduce(m, m.clamp(x, lo, hi))
    t = m.pow2(m.b.sub(k, m.i(1)))
    res = m.mul(m.fma(t, _expm1_r(m, r), m.sub(t, 0.5)), 2.0)
    res = m.sel(m.gt(x, hi), math.inf, res)
    return m.sel(m.lt(m.fabs(x), 2.0 ** -(m.mant + 2)), x, res)  # expm1 x = x there (and keeps -0)


def _sinh(m, x):
    ax = m.fabs(x)
    t = _expm1(m, m.sel(m.lt(ax, 30.0), ax, 30.0))
    small = m.mul(0.5, m.add(t, m.div(t, m.add(t, 1.0))))
    w = _exp(m, m.mul(0.5, ax))
    large = m.mul(m.mul(0.5, w), w)  # e**|x| / 2 without overflowing before the result does
    res = m.sel(m.lt(ax, 30.0), small, large)
    return m.copysign(res, x)


def _cosh(m, x):
    ax = m.fabs(x)
    t = _exp(m, m.sel(m.lt(ax, 30.0), ax, 30.0))
    small = m.fma(0.5, t, m.div(0.5, t))
    w = _exp(m, m.mul(0.5, ax))
    return m.sel(m.lt(ax, 30.0), small, m.mul(m.mul(0.5, w), w))


def _tanh(m, x):
    em = _expm1(m, m.mul(-2.0, m.fabs(x)))  # in (-1, 0]: no cancellation anywhere
    return m.copysign(m.div(m.b.fneg(em), m.add(em, 2.0)), x)


def _sigmoid(m, x):
    """1 / (1 + e**-x) for x >= 0 and e**x / (1 + e**x) for x < 0: exact tails in both directions."""
    e = _exp(m, m.b.fneg(m.fabs(x)))
    return m.div(m.sel(m.ge(x, 0.0), 1.0, e), m.add(e, 1.0))


# ---- logarithms ----------------------------------------------------------------------------------

def _log_parts(m, x, precise=False):
    """x = 2**k * u with u in [sqrt(1/2), sqrt(2)); returns (k as float, hi, lo) with
    log(u) = hi + lo to about 2**-62 relative (for finite x > 0, subnormals included)."""
    b = m.b
    tiny = m.lt(x, 2.0 ** (1 - m.bias))
    x = m.sel(tiny, m.mul(x, 2.0 ** (m.mant + 2)), x)
    ix = m.bits(x)
    k = b.ashr(b.sub(ix, m.i(_bits(math.sqrt(0.5), m.w))), m.i(m.mant))
    u = m.flt(b.sub(ix, b.shl(k, m.i(m.mant))))
    k = b.sub(k, b.select(tiny, m.i(m.mant + 2), m.i(0)))
    f = m.sub(u, 1.0)
    d = m.add(f, 2.0)
    de = m.add(m.sub(2.0, d), f)  # 2 + f = d + de exactly
    rd = m.div(1.0, d)
    sh = m.mul(f, rd)  # s = f / (2 + f) = sh + sl
    sl = m.mul(m.sub(m.fma(m.b.fneg(sh), d, f), m.mul(sh, de)), rd)
    z = m.mul(sh, sh)
    cs = _coef(m, LOG_F64, LOG_F32)  # log u = 2s + s^3 P(s^2)
    if not precise:
        rest = m.mul(m.mul(sh, z), m.poly(z, cs))
        return m.to_float(k), m.mul(sh, 2.0), m.fma(sl, 2.0, rest)
    # for pow: the s^3 term (1% of the result) in double-double too, so hi + lo is a true pair
    s3 = m.mul(z, sh)
    s3e = m.fma(m.fma(sh, sh, m.b.fneg(z)), sh, m.fma(z, sh, m.b.fneg(s3)))
    t1 = m.mul(s3, cs[0])
    # plus what rounding misses: 2/3 - cs[0] = 3.7e-17 (the coefficient's own rounding) and d(s^3 P)/ds * sl
    t1e = m.fma(s3e, cs[0], m.fma(s3, cs[0], m.b.fneg(t1)))
    t1e = m.add(t1e, m.fma(m.mul(z, sl), 2.0, m.mul(s3, 3.700743415417188e-17 if m.w == 64 else 0.0)))
    two_s = m.mul(sh, 2.0)
    hi = m.add(two_s, t1)
    tail = m.mul(m.mul(s3, z), m.poly(z, cs[1:]))
    lo = m.add(m.add(m.sub(two_s, hi), t1), m.add(m.fma(sl, 2.0, t1e), tail))
    return m.to_float(k), hi, lo


def _log_combine(m, kf, hi, lo, c, mult):
    """kf * c + (hi + lo) * mult, with c = (c_hi, c_lo) and mult = (m_hi, m_lo) or None for 1."""
    if mult is None:
        y, ye = hi, lo
    else:
        y = m.mul(hi, mult[0])
        # lo is not a tail (it holds the s^3 terms), so it takes the whole multiplier
        ye = m.add(m.fma(hi, mult[0], m.b.fneg(y)), m.fma(hi, mult[1], m.mul(lo, mult[0] + mult[1])))
    a = kf if c is None else m.mul(kf, c[0])
    t = m.add(a, y)
    e = m.add(m.sub(a, t), y)  # |a| >= |y| whenever a != 0
    tail = ye if c is None else m.fma(kf, c[1], ye)
    return m.add(t, m.add(e, tail))


def _log_specials(m, x, res, zero_at=0.0):
    res = m.sel(m.eq(x, math.inf), math.inf, res)
    res = m.sel(m.eq(x, zero_at), -math.inf, res)
    res = m.sel(m.lt(x, zero_at), math.nan, res)
    return m.sel(m.isnan(x), x, res)



def _log_family(which):
    def build(m, x):
        kf, hi, lo = _log_parts(m, x)
        if which == "log":
            res = _log_combine(m, kf, hi, lo, _LN2[m.w], None)
        elif which == "log2":
            res = _log_combine(m, kf, hi, lo, None, _INV_LN2[m.w])
        else:
            res = _log_combine(m, kf, hi, lo, _LOG10_2[m.w], _INV_LN10[m.w])
        return _log_specials(m, x, res)
    return build


def _log1p(m, x):
    """log(u) + (x - (u - 1)) / u for u = 1 + x rounded: the correction is the rounding error of u."""
    u = m.add(x, 1.0)
    corr = m.div(m.sub(x, m.sub(u, 1.0)), u)
    kf, hi, lo = _log_parts(m, u)
    res = _log_combine(m, kf, hi, m.add(lo, corr), _LN2[m.w], None)
    res = _log_specials(m, x, res, zero_at=-1.0)
    return m.sel(m.eq(x, 0.0), x, res)


def _pow(m, x, y):
    """exp(y log|x|) with log|x| in double-double, then C99's special cases (as NumPy)."""
    b = m.b
    ax = m.fabs(x)
    kf, hi, lo = _log_parts(m, ax, precise=True)
    l2hi, l2lo = _LN2[m.w]
    a = m.mul(kf, l2hi)
    lh = m.add(a, hi)
    ll = m.add(m.add(m.sub(a, lh), hi), m.fma(kf, l2lo, lo))
    lh2 = m.add(lh, ll)
    ll2 = m.sub(ll, m.sub(lh2, lh))
    zh = m.mul(y, lh2)
    zl = m.fma(y, ll2, m.fma(y, lh2, b.fneg(zh)))
    mag = _exp_dd(m, zh, zl)
    ay = m.fabs(y)
    neg_y = m.lt(y, 0.0)
    top = 2.0 ** m.mant  # from here on every float is an integer; below, v + top - top rounds v >= 0

    def integral(v):
        return b.or_(m.ge(v, top), m.eq(m.sub(m.add(v, top), top), v))
    y_int = integral(ay)
    y_odd = b.and_(b.and_(y_int, m.lt(ay, 2 * top)), b.not_(integral(m.mul(ay, 0.5))))
    mag = m.sel(m.eq(ax, 0.0), m.sel(neg_y, math.inf, 0.0), mag)
    mag = m.sel(m.eq(ax, math.inf), m.sel(neg_y, 0.0, math.inf), mag)
    grows = b.icmp_unsigned("==", m.gt(ax, 1.0), m.gt(y, 0.0))
    mag = m.sel(m.eq(ay, math.inf), m.sel(m.eq(ax, 1.0), 1.0, m.sel(grows, math.inf, 0.0)), mag)
    res = m.sel(y_odd, m.copysign(mag, x), mag)
    res = m.sel(b.and_(m.gt(x, -math.inf), b.and_(m.lt(x, 0.0), b.not_(y_int))), math.nan, res)
    res = m.sel(b.or_(m.isnan(x), m.isnan(y)), math.nan, res)
    return m.sel(b.or_(m.eq(y, 0.0), m.eq(x, 1.0)), 1.0, res)


# ---- erf -----------------------------------------------------------------------------------------

def _erf(m, x):
    """x P(x^2) below 1; above, 1 - e**-x^2 erfcx(|x|) with erfcx fitted on three pieces."""
    ax = m.fabs(x)
    small = m.mul(x, m.poly(m.mul(x, x), ERF_F64))
    (m1, c1), (m2, c2), (m3, c3) = ERFCX_F64
    first, second = m.lt(ax, 2.0), m.lt(ax, 3.5)
    t = m.sub(ax, m.sel(first, m1, m.sel(second, m2, m3)))
    acc = m.c(0.0)
    for k1, k2, k3 in reversed(list(zip(c1, c2, c3))):
        acc = m.fma(acc, t, m.sel(first, k1, m.sel(second, k2, k3)))
    sq = m.mul(ax, ax)
    e = _exp_dd(m, m.b.fneg(sq), m.b.fneg(m.fma(ax, ax, m.b.fneg(sq))))
    large = m.copysign(m.sub(1.0, m.mul(e, acc)), x)
    res = m.sel(m.lt(ax, 1.0), small, large)
    return m.sel(m.ge(ax, 6.0), m.copysign(1.0, x), res)


# ---- trigonometry (float64; float32 goes through it) ---------------------------------------------

def _reduce_pio2(m, x):
    """x = q pi/2 + rh + rl with |rh| <= pi/4 (+ tiny), rl a tail below ulp(rh); q's low bits. Below
    2**30, Cody-Waite with pi/2 in three parts (accurate there); from 2**30 up, the exact Payne-Hanek
    reduction, chosen by select."""
    qf, q = m.rint(m.mul(x, 2 / math.pi))
    nq = m.b.fneg(qf)
    r = m.fma(nq, _PIO2_3[0], x)  # exact: x and q hi are multiples of 2**-53 and r is below 1
    p2 = m.mul(nq, _PIO2_3[1])
    rh, e = _two_sum(m, r, p2)
    rh, rl = _two_sum(m, rh, m.add(m.add(e, m.fma(nq, _PIO2_3[1], m.b.fneg(p2))), m.mul(nq, _PIO2_3[2])))
    big = m.ge(m.fabs(x), 2.0 ** _PH_MIN)
    q_big, rh_big, rl_big = _reduce_big(m, x)
    return m.b.select(big, q_big, q), m.sel(big, rh_big, rh), m.sel(big, rl_big, rl)


# Payne-Hanek: x 2/pi mod 4 needs only a window of the bits of 2/pi; bits above it add multiples of 4.
# Exponents e of |x| come in rows of _PH_STEP from 2**_PH_MIN; row b (first exponent E) holds the bits
# of 2/pi at weights 2**(53-E) .. 2**(-158-E) as four 53-bit doubles, scaled by 2**E (so they are
# normal numbers): with a = x 2**-E in [1, 2**16), a * 2/pi = sum a * T_j (mod 4) up to 2**-141.
_PH_MIN, _PH_STEP, _PH_ROWS = 30, 16, 63  # rows up to exponent 30 + 16 * 63 - 1 > 1024 (inf, NaN)


def _ph_table():
    bits, k = 1216, _mathlib_f32.two_over_pi(1216)
    out = []
    for row in range(_PH_ROWS):
        e = _PH_MIN + _PH_STEP * row
        for j in range(4):  # weights 2**(53-e-53j) .. 2**(1-e-53j); the scaling by 2**e is in ldexp
            lo = 1 - e - 53 * j
            out.append(math.ldexp((k >> (bits + lo)) & ((1 << 53) - 1), lo + e))
    return tuple(out)


_PH_TABLE = _ph_table()


def _two_sum(m, a, b):
    s = m.add(a, b)
    bb = m.sub(s, a)
    return s, m.add(m.sub(a, m.sub(s, bb)), m.sub(b, bb))


def _fast_two_sum(m, a, b):  # |a| >= |b| or a == 0
    s = m.add(a, b)
    return s, m.sub(b, m.sub(s, a))


def _split_small(m, t):
    """t = k + f exactly, k an integer, |f| <= 1/2; |t| < 2**51."""
    k, _ = m.rint(t)
    return k, m.sub(t, k)


def _split_mod4(m, t):
    """t = k + f (mod 4) exactly, k an integer in [-2, 2], |f| <= 1/2; any finite t."""
    v = m.mul(t, 0.25)
    c = m.copysign(2.0 ** 52, v)
    v = m.sel(m.ge(m.fabs(v), 2.0 ** 52), v, m.sub(m.add(v, c), c))  # rint(v): integral from 2**52 up
    return _split_small(m, m.fma(v, -4.0, t))


def _reduce_big(m, x):
    """(q, rh, rl) as _reduce_pio2 for finite |x| >= 2**_PH_MIN (garbage, never UB, below). Every step
    is exact except the double-word additions at the end (relative error 2**-104), so r is right
    even for the double closest to a multiple of pi/2 (r ~ 2**-61)."""
    b = m.b
    ix = m.bits(x)
    row = b.ashr(b.sub(b.and_(b.lshr(ix, m.i(52)), m.i(0x7FF)), m.i(1023 + _PH_MIN)), m.i(4))
    row = b.select(b.icmp_signed("<", row, m.i(0)), m.i(0), row)
    first = b.add(b.mul(row, m.i(_PH_STEP)), m.i(_PH_MIN))
    a = m.flt(b.sub(ix, b.shl(first, m.i(52))))  # x 2**-first, exactly: |a| in [1, 2**16)
    g = b.module.globals.get("tw.math.two_over_pi")
    if g is None:
        ty = ir.ArrayType(F64, len(_PH_TABLE))
        g = ir.GlobalVariable(b.module, ty, "tw.math.two_over_pi")
        g.global_constant, g.linkage, g.initializer = True, "internal", ir.Constant(ty, list(_PH_TABLE))
    base = b.mul(row, m.i(4))
    t = [b.load(b.gep(g, [ir.Constant(I64, 0), b.add(base, m.i(j))], inbounds=True)) for j in range(4)]
    h = [m.mul(a, tj) for tj in t]
    lo = [m.fma(a, tj, b.fneg(hj)) for tj, hj in zip(t[:3], h[:3])]
    # |a T0| < 2**70, a multiple of 2**-51, as are h0, l0 and so their fractions: f0 + f1 is exact
    k0, f0 = _split_mod4(m, h[0])
    k1, f1 = _split_mod4(m, lo[0])
    k2, f = _split_small(m, m.add(f0, f1))
    k3, f3 = _split_mod4(m, h[1])  # |a T1| < 2**17
    ch, cl = _two_sum(m, f, f3)
    k4, ch = _split_small(m, ch)
    ch, cl = _fast_two_sum(m, ch, cl)  # ch is 0 or a multiple of the old ulp(ch) > 2 |cl|
    # + (l1 + h2) (< 2**-36): the accurate double-word sum, relative error 3 2**-106 even in cancellation
    dh, dl = _two_sum(m, lo[1], h[2])
    sh, sl = _two_sum(m, ch, dh)
    th, tl = _two_sum(m, cl, dl)
    vh, vl = _fast_two_sum(m, sh, m.add(sl, th))
    fh, fl = _fast_two_sum(m, vh, m.add(tl, vl))
    sh, sl = _two_sum(m, fh, m.add(lo[2], h[3]))  # + the rest (< 2**-89)
    fh, fl = _fast_two_sum(m, sh, m.add(fl, sl))
    _, q = m.rint(m.add(m.add(m.add(k0, k1), m.add(k2, k3)), k4))
    rh = m.mul(fh, _PIO2[0])  # r = (fh + fl) pi/2 as a double-word
    return (q, *_fast_two_sum(m, rh, m.add(m.fma(fh, _PIO2[0], b.fneg(rh)),
                                             m.fma(fh, _PIO2[1], m.mul(fl, _PIO2[0])))))


def _dw_div(m, x, y):
    """(xh + xl) / (yh + yl) with one correction step: about half an ulp plus the inputs' errors."""
    (xh, xl), (yh, yl) = x, y
    yv = m.add(yh, yl)
    t = m.div(m.add(xh, xl), yv)
    res = m.sub(m.add(m.fma(m.b.fneg(t), yh, xh), xl), m.mul(t, yl))
    return m.add(t, m.div(res, yv))


def _trig(which):
    def build(m, x):
        b = m.b
        q, rh, rl = _reduce_pio2(m, x)
        s, c = _mathlib_f32.sincos_r(m, rh, rl, SIN_F64, COS_F64)
        if which == "cos":
            q = b.add(q, m.i(1))  # cos x = sin(x + pi/2)
        odd = b.trunc(q, ir.IntType(1))
        if which == "tan":
            neg_c = (m.b.fneg(c[0]), m.b.fneg(c[1]))
            res = m.sel(odd, _dw_div(m, neg_c, s), _dw_div(m, s, c))
        else:
            v = m.sel(odd, m.add(*c), m.add(*s))
            flip = b.trunc(b.lshr(q, m.i(1)), ir.IntType(1))
            res = m.sel(flip, m.b.fneg(v), v)
        res = m.sel(m.eq(m.fabs(x), math.inf), math.nan, res)
        return res if which == "cos" else m.sel(m.eq(x, 0.0), x, res)
    return build


def _atan_01(m, t):
    return m.fma(m.mul(t, m.mul(t, t)), m.poly(m.mul(t, t), ATAN_F64), t)


def _atan(m, x):
    ax = m.fabs(x)
    inv = m.gt(ax, 1.0)
    p = _atan_01(m, m.sel(inv, m.div(1.0, ax), ax))
    res = m.sel(inv, m.add(m.sub(_PIO2[0], p), _PIO2[1]), p)
    return m.copysign(res, x)


def _asin_core(m, ax):
    """(asin-ish p, big): p = asin(ax) for ax <= 1/2, else p = asin(sqrt((1 - ax) / 2))."""
    big = m.gt(ax, 0.5)
    z = m.sel(big, m.mul(m.sub(1.0, ax), 0.5), m.mul(ax, ax))
    s = m.sel(big, m.sqrt(z), ax)
    return m.fma(m.mul(s, z), m.poly(z, ASIN_F64), s), big


def _asin(m, x):
    p, big = _asin_core(m, m.fabs(x))
    res = m.sel(big, m.add(m.fma(p, -2.0, _PIO2[0]), _PIO2[1]), p)
    res = m.sel(m.gt(m.fabs(x), 1.0), math.nan, res)
    return m.copysign(res, x)


def _acos(m, x):
    p, big = _asin_core(m, m.fabs(x))
    neg = m.lt(x, 0.0)
    near = m.add(m.sub(_PIO2[0], m.copysign(p, x)), _PIO2[1])  # |x| <= 1/2: pi/2 - asin x
    far = m.sel(neg, m.add(m.fma(p, -2.0, 2 * _PIO2[0]), 2 * _PIO2[1]), m.mul(p, 2.0))
    res = m.sel(big, far, near)
    return m.sel(m.gt(m.fabs(x), 1.0), math.nan, res)


def _atan2(m, y, x):
    b = m.b
    ax, ay = m.fabs(x), m.fabs(y)
    swap = m.gt(ay, ax)
    num, den = m.sel(swap, ax, ay), m.sel(swap, ay, ax)
    t = m.div(num, den)
    t = m.sel(m.eq(den, 0.0), 0.0, m.sel(m.eq(num, math.inf), 1.0, t))  # 0/0 and inf/inf
    a = _atan_01(m, t)
    neg = b.icmp_signed("<", m.bits(x), m.i(0))  # sign bit: atan2(+-0, -0) is +-pi
    base_hi = m.sel(swap, _PIO2[0], m.sel(neg, 2 * _PIO2[0], 0.0))
    base_lo = m.sel(swap, _PIO2[1], m.sel(neg, 2 * _PIO2[1], 0.0))
    sa = m.sel(b.xor(swap, neg), m.b.fneg(a), a)
    res = m.add(m.add(base_hi, sa), base_lo)
    res = m.copysign(res, y)
    return m.sel(b.or_(m.isnan(x), m.isnan(y)), math.nan, res)


# ---- entry points --------------------------------------------------------------------------------

_NATIVE = {"exp": _exp, "exp2": _exp2, "expm1": _expm1, "log": _log_family("log"), "log2": _log_family("log2"),
           "log10": _log_family("log10"), "log1p": _log1p, "tanh": _tanh, "sigmoid": _sigmoid}
_VIA_F64 = {"erf": _erf, "sinh": _sinh, "cosh": _cosh, "sin": _trig("sin"), "cos": _trig("cos"),
            "tan": _trig("tan"), "asin": _asin, "acos": _acos, "atan": _atan, "pow": _pow, "atan2": _atan2}
FUNCTIONS = frozenset(_NATIVE) | frozenset(_VIA_F64)
_F32 = _mathlib_f32.FUNCTIONS  # float32 sin and cos in float32 vectors (mathlib_f32.py)


def _widen(b, a):
    """float -> double, written so that LLVM cannot fold a preceding half -> float into one
    half -> double conversion (a call to a runtime helper the JIT does not have): widen a + 0.0,
    then put back the sign of a zero from the bits."""
    w = b.fpext(b.fadd(a, ir.Constant(F32, 0.0)), F64)
    sign = b.shl(b.zext(b.and_(b.bitcast(a, I32), ir.Constant(I32, -2 ** 31)), I64), ir.Constant(I64, 32))
    return b.bitcast(b.or_(b.bitcast(w, I64), sign), F64)


def _narrow(b, w):
    """double -> float, likewise opaque, so a following float -> half is not folded into a
    double -> half conversion (__truncdfhf2, also missing; and it would not round twice)."""
    r = b.fptrunc(w, F32)
    sign = b.and_(b.bitcast(r, I32), ir.Constant(I32, -2 ** 31))
    return b.bitcast(b.or_(b.bitcast(b.fadd(r, ir.Constant(F32, 0.0)), I32), sign), F32)


def _function(module, fn, t, arity):
    name = f"tw.math.{fn}.{t.intrinsic_name}"
    f = module.globals.get(name)
    if f is None:
        f = ir.Function(module, ir.FunctionType(t, [t] * arity), name)
        f.linkage = "internal"
        f.attributes.add("alwaysinline")
        b = ir.IRBuilder(f.append_basic_block("entry"))
        if t == F32 and fn in _F32:
            b.ret(_F32[fn](_M(b, t), *f.args))
        elif t == F32 and fn in _VIA_F64:
            wide = _function(module, fn, F64, arity)
            b.ret(_narrow(b, b.call(wide, [_widen(b, a) for a in f.args])))
        else:
            b.ret((_NATIVE.get(fn) or _VIA_F64[fn])(_M(b, t), *f.args))
    return f


def call(b, fn, *args):
    """Apply math function `fn` (a name in FUNCTIONS) to float or double values."""
    return b.call(_function(b.module, fn, args[0].type, len(args)), list(args))
