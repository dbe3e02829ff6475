"""The cpu backend's vectorised math functions (backends/cpu/mathlib.py) against exact references.

Each function runs over ~70k inputs spread over every exponent of the type (random bit patterns:
both signs, subnormals), a dense sample of the usual range, the overflow/underflow thresholds and
the special values. float32 results are compared with the float64 NumPy function, float64 results
with the long double one (80-bit on x86); the error is in units of the last place of the exact
result in the tested type. Special values (NaN, +-inf, +-0, the limits) must match exactly."""
import math
import re

import numpy as np
import pytest
from conftest import vectorised

import tilewise as tw

pytestmark = pytest.mark.skipif(not hasattr(np, "longdouble") or np.finfo(np.longdouble).nmant < 63,
                                reason="needs an 80-bit long double reference")

T = 1024
# function: max error in ulp for float32, float64 (docs/semantics.md, "Math functions on the cpu backend")
BOUNDS = {
    "exp": (1, 1), "exp2": (1, 1), "expm1": (1.5, 2), "log": (1, 1), "log2": (1, 1), "log10": (1, 1),
    "log1p": (1, 1), "tanh": (3, 3), "sigmoid": (2.5, 2.5), "erf": (1, 2), "sinh": (1, 2.5), "cosh": (1, 2.5),
    "sin": (1, 1), "cos": (1, 1), "tan": (1, 1), "asin": (1, 2), "acos": (1, 1.5), "atan": (1, 1.5),
    "pow": (1, 1.5), "atan2": (1, 1.5),
}
UNARY = [f for f in BOUNDS if f not in ("pow", "atan2")]
TRIG = ["sin", "cos", "tan"]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


REF = {"exp": np.exp, "exp2": np.exp2, "expm1": np.expm1, "log": np.log, "log2": np.log2, "log10": np.log10,
       "log1p": np.log1p, "tanh": np.tanh, "sigmoid": _sigmoid, "sinh": np.sinh, "cosh": np.cosh,
       "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
       "pow": np.power, "atan2": np.arctan2,
       "erf": lambda x: _erf(x.astype(np.float64)).astype(x.dtype)}  # glibc erf: within 1 ulp itself


def reference(fn, *xs):
    wide = np.float64 if xs[0].dtype == np.float32 else np.longdouble
    with np.errstate(all="ignore"):
        return REF[fn](*[x.astype(wide) for x in xs])


@tw.kernel
def unary_k(x, outs, FNS: tw.Constant[tuple], T: tw.Constant[int]):
    i = tw.bid(0)
    t = tw.load(x, i, shape=T)
    for k in range(len(FNS)):  # unrolled: every function in one specialisation (one compile)
        tw.store(outs[k], i, getattr(tw, FNS[k])(t))


@tw.kernel
def binary_k(x, y, pw, at, T: tw.Constant[int]):
    i = tw.bid(0)
    a, b = tw.load(x, i, shape=T), tw.load(y, i, shape=T)
    tw.store(pw, i, a ** b)
    tw.store(at, i, tw.atan2(a, b))


def run_unary(fns, x):
    outs = [np.zeros_like(x) for _ in fns]
    tw.launch(None, (tw.cdiv(x.size, T),), unary_k, (x, outs, tuple(fns), T))
    return dict(zip(fns, outs))


def run_binary(x, y):
    pw, at = np.zeros_like(x), np.zeros_like(x)
    tw.launch(None, (tw.cdiv(x.size, T),), binary_k, (x, y, pw, at, T))
    return {"pow": pw, "atan2": at}


def ulp_error(got, ref, dt):
    """|got - ref| in ulp of ref rounded to dt; infinities count as 2**(emax+1) (one ulp past the max)."""
    wide = np.float64 if dt == np.float32 else np.longdouble
    big = wide(2.0) ** (np.finfo(dt).maxexp)
    g, r = got.astype(wide), ref.astype(wide)
    g = np.where(np.isinf(g), np.copysign(big, g), g)
    r = np.where(np.isinf(r), np.copysign(big, r), r)
    with np.errstate(over="ignore", invalid="ignore"):
        ulp = np.spacing(np.minimum(np.abs(r), np.finfo(dt).max).astype(dt)).astype(wide)
        err = np.abs(g - r) / ulp
    both_nan = np.isnan(got) & np.isnan(ref)
    return np.where(both_nan, 0, np.where(np.isnan(got) | np.isnan(ref), np.inf, err))


def specials(dt):
    fi = np.finfo(dt)
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 2.5, -2.5,
            float(fi.max), -float(fi.max), float(fi.smallest_normal), float(fi.smallest_subnormal),
            -float(fi.smallest_subnormal), float(fi.eps), 1e-30, -1e-30, 6.0, -6.0, 30.0, -30.0]
    lims = [88.72, 88.73, -87.3, -103.97, -103.98, -104.0, 128.0, -149.0, -150.0, -151.0] if dt == np.float32 else \
        [709.78, 709.79, -708.4, -745.13, -745.14, 1024.0, -1074.0, -1075.0, -1076.0, 710.47, 710.48]
    return np.array(vals + lims + [-v for v in lims], dtype=dt)


def inputs(dt, rng, n=1 << 16):
    """Random bit patterns (every exponent, both signs, subnormals; NaNs dropped), a dense sample
    of [-10, 10] and [-1, 1], and the special values."""
    ut = np.uint32 if dt == np.float32 else np.uint64
    raw = rng.integers(0, np.iinfo(ut).max, size=n, dtype=ut, endpoint=True).view(dt)
    raw = raw[~np.isnan(raw)]
    dense = np.concatenate([rng.uniform(-10, 10, 8192), rng.uniform(-1, 1, 8192)]).astype(dt)
    return np.concatenate([raw, dense, specials(dt)])


def exact_specials(fn, got, ref, x, dt):
    """On the special inputs, the result must be the exactly-rounded reference, sign of zero included."""
    with np.errstate(over="ignore"):
        want = ref.astype(dt)
    same = (got == want) & (np.signbit(got) == np.signbit(want)) | (np.isnan(got) & np.isnan(want))
    bad = ~same & (~np.isfinite(want) | (want == 0) | ~np.isfinite(got) | (got == 0))
    assert not bad.any(), f"{fn}: {x[bad][:8]} -> {got[bad][:8]}, want {want[bad][:8]}"


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_unary_accuracy(monkeypatch, rng, dt):
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    x = inputs(dt, rng)
    got = run_unary(UNARY, x)
    col = 0 if dt == np.float32 else 1
    report = {}
    for fn in UNARY:
        ref = reference(fn, x)
        err = ulp_error(got[fn], ref, dt)
        report[fn] = float(err.max())
        worst = int(np.argmax(err))
        assert err.max() <= BOUNDS[fn][col], f"{fn}({x[worst]!r}) = {got[fn][worst]!r}, want {ref[worst]!r}"
        exact_specials(fn, got[fn], ref, x, dt)
    print(dt.__name__, report)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_binary_accuracy(monkeypatch, rng, dt):
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    s = specials(dt)
    sx, sy = (a.ravel() for a in np.meshgrid(s, s))  # every pair of special values
    n = 1 << 15
    mag = np.exp2(rng.uniform(-8, 8, n)) * rng.choice([-1, 1], n)
    ys = np.concatenate([rng.integers(-60, 60, n // 2), rng.uniform(-60, 60, n // 2).round(1)])
    near_one = 1 + rng.uniform(-0.5, 0.5, n)  # large exponents of bases near 1: pow's hardest case
    big_y = rng.uniform(-700, 700, n) / np.log(np.abs(near_one) + 1e-300)
    x = np.concatenate([sx, inputs(dt, rng, n), mag, near_one]).astype(dt)
    y = np.concatenate([sy, rng.permutation(inputs(dt, rng, n)), ys, big_y]).astype(dt)
    x, y = x[:min(x.size, y.size)], y[:min(x.size, y.size)]
    got = run_binary(x, y)
    col = 0 if dt == np.float32 else 1
    report = {}
    for fn in ("pow", "atan2"):
        ref = reference(fn, x, y)
        err = ulp_error(got[fn], ref, dt)
        report[fn] = float(err.max())
        worst = int(np.argmax(err))
        assert err.max() <= BOUNDS[fn][col], \
            f"{fn}({x[worst]!r}, {y[worst]!r}) = {got[fn][worst]!r}, want {ref[worst]!r}"
        exact_specials(fn, got[fn][:sx.size], ref[:sx.size], x[:sx.size], dt)
    print(dt.__name__, report)


# Doubles extremely close to a multiple of pi/2 (x mod pi/2 ~ 4.7e-19 for the first: the hardest case for
# float64, Muller's "Elementary Functions"), powers of ten, the largest finite values and the switch at 2**30.
HARD = [
    6381956970095103 * 2.0 ** 797, 1e22, 1e300, 1e308, 2.0 ** 1023, float(np.finfo(np.float32).max),
    float(np.finfo(np.float64).max), 2.0 ** 30, np.nextafter(2.0 ** 30, 0), 2.0 ** 50, 2.0 ** 52 + 1, 2.0 ** 63]


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_trig_large_arguments(monkeypatch, rng, dt):
    """sin, cos, tan reduce exactly (Payne-Hanek from 2**30): log-uniform magnitudes up to the largest
    finite value, both signs, the doubles (floats) rounded from k pi/2 for large k, and HARD."""
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    fi = np.finfo(dt)
    n = 1 << 14
    mag = np.minimum(np.exp2(rng.uniform(0, np.log2(float(fi.max)), n)), float(fi.max))
    k = np.exp2(rng.uniform(20, 62, n // 4)).round().astype(np.longdouble)
    near = (k * (np.longdouble(np.pi) / 2 + np.longdouble(6.123233995736766e-17) / 2)).astype(dt)
    hard = np.array([h for h in HARD if h <= float(fi.max)], dtype=dt)
    x = np.concatenate([mag * rng.choice([-1, 1], n), near, hard, -hard]).astype(dt)
    got = run_unary(TRIG, x)
    col = 0 if dt == np.float32 else 1
    report = {}
    for fn in TRIG:
        ref = reference(fn, x)
        err = ulp_error(got[fn], ref, dt)
        report[fn] = float(err.max())
        worst = int(np.argmax(err))
        assert err.max() <= BOUNDS[fn][col], f"{fn}({x[worst]!r}) = {got[fn][worst]!r}, want {ref[worst]!r}"
    if dt == np.float64:  # the hardest case: cos x = -4.687165924254627611e-19 (mpmath, 300 bits)
        assert abs(got["cos"][n + n // 4] / -4.687165924254627611e-19 - 1) < 2.0 ** -52
    print(dt.__name__, report)


@tw.kernel
def exp_k(x, y, T: tw.Constant[int]):
    tw.store(y, tw.bid(0), tw.exp(tw.load(x, tw.bid(0), shape=T)))


@tw.kernel
def sin_k(x, y, T: tw.Constant[int]):
    tw.store(y, tw.bid(0), tw.sin(tw.load(x, tw.bid(0), shape=T)))


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kern", [exp_k, sin_k], ids=["exp", "sin"])
def test_math_vectorises(kern, dt):
    """The point of mathlib: a loop applying exp or sin (its Payne-Hanek table lookup included) becomes
    vector code, with no call into libm."""
    x = np.linspace(-5, 5, T, dtype=dt)
    code = tw.compile(kern, (x, np.empty_like(x), T), target="cpu").code
    from tilewise.backends.cpu.compiler import vector_shape
    # On 16-byte-vector targets without FMA (TILEWISE_CPU=x86-64-v2) LLVM's cost model keeps float64
    # exp scalar (two lanes, and each fma a call): still no libm exp, as checked below.
    if dt == np.float32 or vector_shape()[0] >= 32:
        assert vectorised(code, "double" if dt == np.float64 else "float")
    callees = set(re.findall(r"call [^@]*@([\w.$]+)", code))
    assert callees, "expected intrinsic calls (llvm.fma) in the optimised IR"
    assert not [c for c in callees if re.match(r"(llvm\.)?(exp|sin|cos|tan)", c)], callees


@tw.kernel
def sincos_k(x, s, c, T: tw.Constant[int]):
    t = tw.load(x, tw.bid(0), shape=T)
    tw.store(s, tw.bid(0), tw.sin(t))
    tw.store(c, tw.bid(0), tw.cos(t))


def test_float32_sincos_dense(monkeypatch, rng):
    """float32 sin and cos compute in float32 (mathlib_f32.py: no reduction below pi/4, above it an
    integer Payne-Hanek reduction for every magnitude): within 1 ulp of the exact result over every
    float32 of [pi/4, 2), every 7th of [2**15, 2**16), every 257th from 0 to 2**16, the floats nearest
    k pi/2 for k up to 2**22, random bit patterns of every exponent and the special values, which
    must be exact (sin keeps the sign of zero, inf and NaN give NaN); both signs of each. Checked
    once over every finite float32 (a 6-minute run): 0.7597 ulp for sin, 0.7606 for cos."""
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    b1, b2, b3, b4 = (int(np.float32(v).view(np.uint32)) for v in (math.pi / 4, 2.0, 2.0 ** 15, 2.0 ** 16))
    bits = np.concatenate([np.arange(b1, b2), np.arange(b3, b4, 7), np.arange(0, b4, 257)]).astype(np.uint32)
    k = np.concatenate([np.arange(1, 1 << 14), rng.integers(1 << 14, 1 << 22, 1 << 14)]).astype(np.float64)
    near = (k * (np.pi / 2)).astype(np.float32)
    near = np.concatenate([near, np.nextafter(near, np.float32(0)), np.nextafter(near, np.float32(np.inf))])
    x = np.concatenate([bits.view(np.float32), near, inputs(np.float32, rng)])
    x = np.concatenate([x, -x])
    s, c = np.empty_like(x), np.empty_like(x)
    tw.launch(None, (tw.cdiv(x.size, T),), sincos_k, (x, s, c, T))
    for fn, got in (("sin", s), ("cos", c)):
        ref = reference(fn, x)
        err = ulp_error(got, ref, np.float32)
        worst = int(np.argmax(err))
        assert err.max() <= 1, f"{fn}({x[worst]!r}) = {got[worst]!r}, want {ref[worst]!r}"
        exact_specials(fn, got, ref, x, np.float32)
    tiny = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-30, -1e-30, 2.0 ** -13], dtype=np.float32)
    sp = np.array([np.inf, -np.inf, np.nan], dtype=np.float32)
    xs = np.concatenate([tiny, sp])
    s, c = np.empty_like(xs), np.empty_like(xs)
    tw.launch(None, (1,), sincos_k, (xs, s, c, T))
    assert (s[:tiny.size].view(np.uint32) == tiny.view(np.uint32)).all()  # sin x = x there, -0 kept
    assert (c[:tiny.size] == 1).all() and np.isnan(s[tiny.size:]).all() and np.isnan(c[tiny.size:]).all()
