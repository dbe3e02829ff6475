"""The native CPU backend (LLVM via llvmlite) against the reference backend on the same kernels: integers
bit for bit, floats within a few ulps. Also the backend's own machinery: threads, stack frames, strided
views, `.code`/`.binary`, assertions, printing, and refusing what it cannot do."""
import os
import sys

import ml_dtypes
import numpy as np
import pytest
from conftest import random_array, run_on, vectorised

import tilewise as tw
from tilewise import backends
from tilewise.backends.cpu import CpuBackend
from tilewise.ir import Function, Op
from tilewise.ir import dtypes as D
from tilewise.ir.types import scalar

# softmax, layer_norm and matmul are the kernels of examples/ (their scripts run main only as __main__)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from layer_norm import layer_norm  # noqa: E402
from matmul import matmul  # noqa: E402
from softmax import softmax  # noqa: E402


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    """Register the (still opt-in) cpu backend for this test only and select it."""
    monkeypatch.setitem(backends._FACTORIES, "cpu", CpuBackend)
    monkeypatch.setitem(backends._INSTANCES, "cpu", CpuBackend())
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")


def both(kernel, grid, args, outs):
    """Launch on the reference backend and on cpu with fresh copies; returns (reference, cpu) outputs."""
    return run_on(("reference", "cpu"), kernel, grid, args, outs)


def same(ref, cpu, rtol=None):
    for r, c in zip(ref, cpu):
        if rtol is None:
            exact(c, r)
        else:
            np.testing.assert_allclose(c.astype(np.float64), r.astype(np.float64), rtol=rtol, atol=rtol)


def exact(got, want, msg=""):
    """Equal values, and for floats equal signs of zero (NaN payloads may differ)."""
    g, w = np.asarray(got), np.asarray(want)
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=msg)
        return
    g, w = g.astype(np.float64), w.astype(np.float64)  # NaN-aware even for ml_dtypes
    np.testing.assert_array_equal(g, w, err_msg=msg)
    np.testing.assert_array_equal(np.signbit(g) & ~np.isnan(g), np.signbit(w) & ~np.isnan(w), err_msg=msg)


# ---- the examples ----------------------------------------------------------------------------------

@tw.kernel
def vadd(a, b, c, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, i, tw.load(a, i, shape=T) + tw.load(b, i, shape=T))


@pytest.mark.parametrize("n,t,dt", [(1, 1, np.float32), (1000, 128, np.float32), (37, 12, np.int32),
                                    (300, 64, np.float16), (77, 32, ml_dtypes.bfloat16), (5, 8, np.uint8)])
def test_vector_add(rng, n, t, dt):
    a, b = random_array(rng, n, dt), random_array(rng, n, dt)
    ref, cpu = both(vadd, (tw.cdiv(n, t),), (a, b, np.zeros(n, dt), t), [2])
    same(ref, cpu)
    np.testing.assert_array_equal(cpu[0], (a + b).astype(dt))


@pytest.mark.parametrize("m,n,tm,tn", [(10, 300, 4, 512), (7, 33, 3, 64), (1, 1, 1, 8)])
def test_softmax(rng, m, n, tm, tn):
    x = random_array(rng, (m, n), np.float32)
    ref, cpu = both(softmax, (tw.cdiv(m, tm),), (x, np.zeros_like(x), tm, tn), [1])
    same(ref, cpu, rtol=1e-6)
    e = np.exp(x - x.max(axis=1, keepdims=True).astype(np.float64))
    np.testing.assert_allclose(cpu[0], e / e.sum(axis=1, keepdims=True), rtol=1e-6, atol=1e-7)


def test_layer_norm(rng):
    m, n = 9, 300
    x, w, b = random_array(rng, (m, n), np.float32), random_array(rng, n, np.float32), random_array(rng, n, np.float32)
    ref, cpu = both(layer_norm, (m,), (x, w, b, np.zeros_like(x), 1e-5, 128), [3])
    same(ref, cpu, rtol=1e-5)
    x64 = x.astype(np.float64)
    want = (x64 - x64.mean(1, keepdims=True)) / np.sqrt(x64.var(1, keepdims=True) + 1e-5) * w + b
    np.testing.assert_allclose(cpu[0], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dt,out", [(np.float32, np.float32), (np.float16, np.float32), (np.float16, np.float16),
                                    (ml_dtypes.bfloat16, np.float32)])
def test_matmul(rng, dt, out):
    m, n, k = 45, 37, 70
    a, b = random_array(rng, (m, k), dt), random_array(rng, (k, n), dt)
    grid = (tw.cdiv(m, 16), tw.cdiv(n, 16))
    ref, cpu = both(matmul, grid, (a, b, np.zeros((m, n), out), 16, 16, 32), [2])
    want = a.astype(np.float64) @ b.astype(np.float64)
    tol = 1e-5 if out == np.float32 else 2e-3
    np.testing.assert_allclose(cpu[0].astype(np.float64), want, rtol=tol, atol=tol * np.abs(want).max())
    same(ref, cpu, rtol=tol)


@tw.kernel
def int_matmul(a, b, c, T: tw.Constant[int]):
    tw.store(c, (0, 0), tw.matmul(tw.load(a, (0, 0), shape=(T, T)), tw.load(b, (0, 0), shape=(T, T))))


def test_int8_matmul_is_exact(rng):
    a, b = random_array(rng, (8, 8), np.int8), random_array(rng, (8, 8), np.int8)
    ref, cpu = both(int_matmul, (1,), (a, b, np.zeros((8, 8), np.int8), 8), [2])
    same(ref, cpu)


# ---- control flow ----------------------------------------------------------------------------------

@tw.kernel
def carried(a, out, n, T: tw.Constant[int]):
    b = tw.bid(0)
    x = tw.load(a, b, shape=T)
    y = tw.zeros((T,), tw.float32)
    k = 0
    for i in range(n + b):           # per-block trip counts; x and y swap every iteration
        x, y = y + 1.0, x * 0.5
        if i % 3 == 0:
            k = k + i
        else:
            k = k - 1
    v = b * 5 + 3
    while v != 1 and k < 1000:       # data-dependent trip count
        v = tw.where(v % 2 == 0, v // 2, 3 * v + 1)
        k += 1
    tw.store(out, b, x + y.reshape((T,)) + k)


def test_carried_values_if_while(rng):
    t, nb = 8, 6
    a = random_array(rng, t * nb, np.float32)
    ref, cpu = both(carried, (nb,), (a, np.zeros_like(a), 3, t), [1])
    same(ref, cpu)


@tw.kernel
def swap_loop(a, out, n, T: tw.Constant[int]):
    x = tw.load(a, 0, shape=T)
    y = tw.reshape(x, (T,)) * 2
    for _ in range(n):
        x, y = y, x                  # yields the carried buffers crossed
    tw.store(out, 0, x - y)


@pytest.mark.parametrize("n", [0, 1, 2, 5])
def test_crossed_yield(rng, n):
    a = random_array(rng, 8, np.int32)
    ref, cpu = both(swap_loop, (1,), (a, np.zeros_like(a), n, 8), [1])
    same(ref, cpu)
    np.testing.assert_array_equal(cpu[0], -a if n % 2 == 0 else a)


# ---- memory: partial tiles, strided views, order ------------------------------------------------------

@tw.kernel
def copy2d(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), tw.bid(1)), shape=(TM, TN), padding_mode=tw.PaddingMode.NAN)
    tw.store(y, index=(tw.bid(0), tw.bid(1)), tile=t * 2)


@pytest.mark.parametrize("view", ["plain", "transposed", "reversed", "sliced"])
def test_strided_views_and_partial_tiles(rng, view):
    base = random_array(rng, (40, 30), np.float32)
    x = {"plain": base, "transposed": base.T, "reversed": base[::-1, ::-2], "sliced": base[3:36:3, 1:]}[view]
    out = np.zeros((x.shape[0] + 2, x.shape[1] + 1), np.float32)[1:-1, :-1]  # a strided output view too
    grid = (tw.cdiv(x.shape[0], 8), tw.cdiv(x.shape[1], 5))
    tw.launch(None, grid, copy2d, (x, out, 8, 5))
    np.testing.assert_array_equal(out, x * 2)


@tw.kernel
def padded_sum(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0) - 1,), shape=(T,), padding_mode=tw.PaddingMode.ZERO)
    tw.store(y, index=(tw.bid(0),), tile=tw.cumsum(t) + tw.sum(t))


def test_tiles_hanging_off_both_ends(rng):
    x = random_array(rng, 13, np.int64)
    ref, cpu = both(padded_sum, (4,), (x, np.zeros(20, np.int64), 6), [1])
    same(ref, cpu)


@tw.kernel
def load_ordered(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), order=(1, 0), padding_mode=tw.PaddingMode.NEG_INF)
    tw.store(y, index=(tw.bid(0), 0), tile=t, order=(1, 0))


def test_load_store_order(rng):
    x = random_array(rng, (6, 10), np.float32)
    ref, cpu = both(load_ordered, (3,), (x, np.zeros_like(x), 4, 6), [1])
    same(ref, cpu)


def test_misaligned_and_odd_strided_arrays(rng):
    raw = np.zeros(41, np.uint8)[1:].view(np.float32)  # contiguous but not 4-byte aligned
    raw[:] = random_array(rng, 10, np.float32)
    out = np.zeros(10, np.float32)
    tw.launch(None, (1,), vadd, (raw, raw, out, 16))
    np.testing.assert_array_equal(out, raw * 2)
    odd = np.lib.stride_tricks.as_strided(np.zeros(32, np.uint8).view(np.uint16), shape=(5,), strides=(3,))
    with pytest.raises(tw.TileLaunchError, match="not a multiple"):
        tw.launch(None, (1,), vadd, (odd, odd, np.zeros(5, np.uint16), 8))


# ---- element-wise ops and casts --------------------------------------------------------------------

UNARY = ("exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "tanh",
         "sinh", "cosh", "asin", "acos", "atan", "sigmoid", "erf", "abs", "floor", "ceil", "trunc", "round",
         "isnan", "isinf", "isfinite", "neg")
FLOAT_BINARY = ("add", "sub", "mul", "truediv", "floordiv", "mod", "minimum", "maximum", "pow", "atan2",
                "eq", "ne", "lt", "le", "gt", "ge")
INT_BINARY = ("add", "sub", "mul", "floordiv", "mod", "pow", "minimum", "maximum", "and", "or", "xor", "shl", "shr",
              "eq", "ne", "lt", "le", "gt", "ge")


def _op(name, x, y, unary):
    """The op `name` (a compile-time string), inlined into the kernel."""
    if name == "neg":
        return -x
    elif name == "add":
        return x + y
    elif name == "sub":
        return x - y
    elif name == "mul":
        return x * y
    elif name == "truediv":
        return x / y
    elif name == "floordiv":
        return x // y
    elif name == "mod":
        return x % y
    elif name == "pow":
        return x ** y
    elif name == "shl":
        return x << y
    elif name == "shr":
        return x >> y
    elif name == "and":
        return x & y
    elif name == "or":
        return x | y
    elif name == "xor":
        return x ^ y
    elif name == "eq":
        return x == y
    elif name == "ne":
        return x != y
    elif name == "lt":
        return x < y
    elif name == "le":
        return x <= y
    elif name == "gt":
        return x > y
    elif name == "ge":
        return x >= y
    elif unary:
        return getattr(tw, name)(x)
    return getattr(tw, name)(x, y)


@tw.kernel
def ops_k(a, b, outs, OPS: tw.Constant[tuple], T: tw.Constant[int]):
    i = tw.bid(0)
    x, y = tw.load(a, i, shape=T), tw.load(b, i, shape=T)
    for k in range(len(OPS)):
        tw.store(outs[k], i, _op(OPS[k], x, y, OPS[k] in UNARY))


def _run_ops(ops, a, b, out_dtypes):
    outs = [np.zeros(a.shape, d) for d in out_dtypes]
    ref, cpu = both(ops_k, (tw.cdiv(a.size, 16),), (a, b, outs, tuple(ops), 16), [2])
    return ref[0], cpu[0]


SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 0.5, 1e-3, 65504.0, 3.0e38, 1e-40]


def _floats(rng, dt, n=61):
    x = np.concatenate([SPECIAL, rng.standard_normal(n - len(SPECIAL)) * 4])
    with np.errstate(over="ignore"):
        return x.astype(dt)


@pytest.mark.parametrize("dt,rtol", [(np.float32, 4e-7), (np.float64, 1e-15), (np.float16, 1e-3),
                                     (ml_dtypes.bfloat16, 8e-3)])
def test_float_unary_matches_reference(rng, dt, rtol):
    a = _floats(rng, dt)
    outs = [np.bool_ if op in ("isnan", "isinf", "isfinite") else dt for op in UNARY]
    with np.errstate(all="ignore"):
        ref, cpu = _run_ops(UNARY, a, a, outs)
    for op, r, c in zip(UNARY, ref, cpu):
        if op in ("abs", "floor", "ceil", "trunc", "round", "isnan", "isinf", "isfinite", "neg", "sqrt"):
            exact(c, r, op)
        else:
            np.testing.assert_allclose(c.astype(np.float64), r.astype(np.float64), rtol=rtol, atol=1e-300, err_msg=op)


@pytest.mark.parametrize("dt", [np.float32, np.float64, np.float16, ml_dtypes.bfloat16])
def test_float_binary_matches_reference(rng, dt):
    a, b = _floats(rng, dt), _floats(rng, dt)[::-1].copy()
    b[:2] = [-0.0, 0.0]                 # ties between zeros of opposite sign
    b[5:9] = [0.0, -0.0, 0.0, -0.0]     # division by zeros of both signs
    outs = [np.bool_ if op in ("eq", "ne", "lt", "le", "gt", "ge") else dt for op in FLOAT_BINARY]
    with np.errstate(all="ignore"):
        ref, cpu = _run_ops(FLOAT_BINARY, a, b, outs)
    for op, r, c in zip(FLOAT_BINARY, ref, cpu):
        if op in ("pow", "atan2"):
            rtol = 1e-6 if dt == np.float32 else 1e-15
            np.testing.assert_allclose(c.astype(np.float64), r.astype(np.float64), rtol=rtol, err_msg=op)
        else:
            exact(c, r, op)


@pytest.mark.parametrize("dt", ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"])
def test_int_binary_is_bit_exact(rng, dt):
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, 64, endpoint=True, dtype=dt)
    b = rng.integers(info.min, info.max, 64, endpoint=True, dtype=dt)
    a[:6] = [info.min, info.min, info.max, 0, 7, info.min]
    b[:6] = [-1 if info.min else 1, 0, 0, 0, info.bits, info.bits - 1]
    b[6:16] = rng.integers(-3 if info.min else 0, info.bits + 3, 10)   # shift amounts in and out of range
    b[16:24] = rng.integers(-2 if info.min else 0, 6, 8)                # small (and negative) exponents
    ref, cpu = _run_ops(INT_BINARY, a, b,
                        [np.bool_ if op in ("eq", "ne", "lt", "le", "gt", "ge") else dt for op in INT_BINARY])
    for op, r, c in zip(INT_BINARY, ref, cpu):
        np.testing.assert_array_equal(c, r, err_msg=op)


@tw.kernel
def casts_k(a, outs, T: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, i, shape=T)
    for k in range(len(outs)):
        tw.store(outs[k], i, x.astype(outs[k].dtype))


CAST_TYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.float16,
              ml_dtypes.bfloat16, np.float32, np.float64, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]


@pytest.mark.parametrize("src", CAST_TYPES, ids=lambda d: np.dtype(d).name)
def test_casts_match_reference(rng, src):
    if np.dtype(src).kind == "f" or src in (ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2):
        with np.errstate(all="ignore"):
            a = np.concatenate([SPECIAL, [1 + 2**-8 + 2**-40, 2.0**31, -2.0**63, 1e20, 300.5, -129.5],
                                rng.standard_normal(40) * 1e3]).astype(src)
    else:
        a = random_array(rng, 52, src)
        if np.dtype(src).kind in "iu":
            info = np.iinfo(src)
            a[:4] = [info.min, info.max, 0, info.max // 3]
    outs = [np.zeros(a.shape, d) for d in CAST_TYPES]
    with np.errstate(all="ignore"):
        ref, cpu = both(casts_k, (tw.cdiv(a.size, 16),), (a, outs, 16), [1])
    for d, r, c in zip(CAST_TYPES, ref[0], cpu[0]):
        if np.dtype(d).kind in "biu":
            np.testing.assert_array_equal(c, r, err_msg=f"{np.dtype(src).name} -> {np.dtype(d).name}")
        else:
            exact(c.astype(np.float64), r.astype(np.float64), f"{np.dtype(src).name} -> {np.dtype(d).name}")


# ---- reductions and scans --------------------------------------------------------------------------

@tw.kernel
def reduce_k(x, s0, s1, mx, mn, am, an, pr, cs, cp, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, (0, 0), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    tw.store(s0, (0, 0), tw.sum(t, axis=0, keepdims=True))
    tw.store(s1, (0,), tw.sum(t, axis=1))
    tw.store(mx, (0,), tw.max(t, axis=1))
    tw.store(mn, (0, 0), tw.min(t, axis=0, keepdims=True))
    tw.store(am, (0,), tw.argmax(t, axis=1))
    tw.store(an, (0,), tw.argmin(t, axis=0))
    tw.store(pr, (0,), tw.reshape(tw.prod(t * 0 + 1 + t / 16 if t.dtype.kind == "f" else t), (1,)))
    tw.store(cs, (0, 0), tw.cumsum(t, axis=1))
    tw.store(cp, (0, 0), tw.cumprod(t, axis=0))


@pytest.mark.parametrize("dt", [np.float32, np.float16, np.int32, np.uint8, np.int64])
def test_reductions_and_scans(rng, dt):
    tm, tn = 5, 7
    x = random_array(rng, (tm, tn), dt)
    if np.dtype(dt).kind == "f":
        x[1, 3] = np.nan
        x[2, :] = x[2, 0]     # ties: the first index wins
    else:
        x[2, :] = x[2, 0]
    outs = [np.zeros((1, tn), dt), np.zeros(tm, dt), np.zeros(tm, dt), np.zeros((1, tn), dt), np.zeros(tm, np.int32),
            np.zeros(tn, np.int32), np.zeros(1, dt), np.zeros((tm, tn), dt), np.zeros((tm, tn), dt)]
    with np.errstate(all="ignore"):
        ref, cpu = both(reduce_k, (1,), (x, *outs, tm, tn), list(range(1, 10)))
    same(ref, cpu, rtol=2e-7 if dt == np.float32 else 1e-3 if dt == np.float16 else None)


# ---- gather, scatter, atomics ----------------------------------------------------------------------

@tw.kernel
def gather_scatter(x, idx, mask, y, z, T: tw.Constant[int]):
    b = tw.bid(0)
    i = tw.load(idx, b, shape=T)
    m = tw.load(mask, b, shape=T)
    g = tw.gather(x, i, mask=m, padding_value=-7)
    tw.scatter(y, (i * 2 + 1,), g + 1, mask=m)     # a permutation: one writer per slot
    tw.store(z, b, g)


def test_gather_scatter(rng):
    n, t = 40, 8
    x = random_array(rng, n, np.int32)
    idx = rng.permutation(np.arange(-5, 35)).astype(np.int16)   # some out of range on both sides
    mask = rng.random(n) < 0.8
    args = (x, idx, mask, np.zeros(2 * n + 2, np.int32), np.zeros(n, np.int32), t)
    ref, cpu = both(gather_scatter, (n // t,), args, [3, 4])
    same(ref, cpu)
    ok = mask & (idx >= 0) & (idx < n)
    np.testing.assert_array_equal(cpu[1], np.where(ok, x[np.clip(idx, 0, n - 1)], -7))


@tw.kernel
def atomics(counts, fmax, fadd, hadd, xs, old, T: tw.Constant[int]):
    b = tw.bid(0)
    v = tw.load(xs, b, shape=T)
    slot = tw.arange(T) % 5                       # every block hits the same 5 slots
    tw.atomic_add(counts, (slot,), 1)
    tw.atomic_max(fmax, (slot,), v)
    tw.atomic_add(fadd, (slot,), tw.where(v > 0, 0.5, 0.25))   # exact in float32: any order gives one sum
    tw.atomic_add(hadd, (slot,), tw.astype(tw.where(v > 0, 1.0, 2.0), tw.float16))
    mine = b * T + tw.arange(T)                   # one owner per element: the old values are deterministic
    tw.store(old, b, tw.atomic_xchg(xs, (mine,), v * 2) + tw.atomic_cas(xs, (mine,), v * 2, v * 3))


def test_atomics_across_threads(rng):
    nb, t = 64, 16
    xs = random_array(rng, nb * t, np.float32)
    args = (np.zeros(5, np.int64), np.full(5, -np.inf, np.float32), np.zeros(5, np.float32), np.zeros(5, np.float16),
            xs, np.zeros(nb * t, np.float32), t)
    ref, cpu = both(atomics, (nb,), args, [0, 1, 2, 3, 4, 5])
    same(ref, cpu)


@tw.kernel
def int_atomics(a, o, T: tw.Constant[int]):
    b = tw.bid(0)
    i = tw.arange(T) % 3
    v = (b + 1) * 7 + tw.arange(T)
    tw.atomic_or(a, (i,), v)
    tw.atomic_xor(a, (i + 3,), v)
    tw.atomic_and(a, (i + 6,), v | 0x0F0F)
    tw.atomic_min(a, (i + 9,), v - 50)
    tw.atomic_cas(o, (b,), 0, b + 1, mask=b % 2 == 0)


@pytest.mark.parametrize("dt", [np.int32, np.uint16, np.int8])
def test_integer_atomics(dt):
    a = np.zeros(12, dt)
    a[6:9] = np.iinfo(dt).max
    a[9:] = 5
    ref, cpu = both(int_atomics, (20,), (a, np.zeros(20, np.int32), 8), [0, 1])
    same(ref, cpu)


@tw.kernel
def locked_increment(lock, counter, REPEAT: tw.Constant[int]):
    for _ in range(REPEAT):
        while tw.atomic_cas(lock, 0, 0, 1) == 1:
            pass
        tw.store(counter, 0, tw.load(counter, 0, shape=1) + 1)
        tw.atomic_xchg(lock, 0, 0)


def test_spin_lock_makes_progress_on_threads(monkeypatch):
    monkeypatch.setenv("TILEWISE_NUM_THREADS", "3")
    lock, counter = np.zeros(1, np.int32), np.zeros(1, np.int32)
    tw.launch(None, (200,), locked_increment, (lock, counter, 5))
    assert counter[0] == 1000 and lock[0] == 0


# ---- the backend's machinery -----------------------------------------------------------------------

@tw.kernel
def count_blocks(out, hits):
    b = tw.bid(0) + tw.num_blocks(0) * (tw.bid(1) + tw.num_blocks(1) * tw.bid(2))
    tw.store(out, b, b * 3)
    tw.atomic_add(hits, 0, 1)


@pytest.mark.parametrize("threads", ["1", "2", "5"])
def test_every_block_runs_once(monkeypatch, threads):
    monkeypatch.setenv("TILEWISE_NUM_THREADS", threads)
    grid = (7, 5, 3)
    out, hits = np.full(105, -1, np.int32), np.zeros(1, np.int64)
    tw.launch(None, grid, count_blocks, (out, hits))
    np.testing.assert_array_equal(out, np.arange(105) * 3)
    assert hits[0] == 105


def _launcher(kernel):
    (_, exe), = kernel.runtime_cache.values()
    return exe._variants[False][1]


@pytest.mark.parametrize("below_s, pooled", [(1e9, False), (0.0, True)])
def test_grids_too_small_to_pay_for_the_pool_run_on_the_calling_thread(monkeypatch, below_s, pooled):
    """After a launch has timed the kernel's blocks, a grid whose blocks are expected to take less than
    _SEQUENTIAL_BELOW_S in all runs without waking the pool's workers; one that takes longer uses them."""
    from tilewise.backends.cpu import launcher
    monkeypatch.setenv("TILEWISE_NUM_THREADS", "2")
    count_blocks.runtime_cache.clear()
    out, hits = np.full(105, -1, np.int32), np.zeros(1, np.int64)
    tw.launch(None, (7, 5, 3), count_blocks, (out, hits))
    assert _launcher(count_blocks).block_s > 0
    monkeypatch.setattr(launcher, "_SEQUENTIAL_BELOW_S", below_s)
    used = []
    real_pool = launcher._pool
    monkeypatch.setattr(launcher, "_pool", lambda frame: used.append(frame) or real_pool(frame))
    out[:] = -1
    tw.launch(None, (7, 5, 3), count_blocks, (out, hits))
    np.testing.assert_array_equal(out, np.arange(105) * 3)
    assert hits[0] == 210 and bool(used) == pooled


def test_data_pointers_match_numpys(rng):
    """Launches read an array's data pointer from NumPy's struct (support/hostmem.data_pointer)."""
    from tilewise.support.hostmem import data_pointer
    base = random_array(rng, (6, 10), np.float64)
    for x in (base, base[1:, 3:], base[::2, ::-3], base.T, base[2, 4:5], np.float32(2.5) * base[0]):
        assert data_pointer(x) == x.ctypes.data


def test_bad_thread_count(monkeypatch):
    monkeypatch.setenv("TILEWISE_NUM_THREADS", "zero")
    with pytest.raises(tw.TileLaunchError, match="TILEWISE_NUM_THREADS"):
        tw.launch(None, (2,), count_blocks, (np.zeros(2, np.int32), np.zeros(1, np.int64)))


@tw.kernel
def big_tiles(x, y, T: tw.Constant[int]):
    t = tw.load(x, (0, 0), shape=(T, T))
    u = tw.exp(t * 0.5) + tw.permute(t, (1, 0))
    tw.store(y, (0, tw.bid(0)), tw.sum(u, axis=0, keepdims=True) + tw.max(u))


@pytest.mark.parametrize("threads", ["1", "2"])
def test_tiles_bigger_than_a_default_stack(monkeypatch, rng, threads):
    monkeypatch.setenv("TILEWISE_NUM_THREADS", threads)
    t = 512  # 1 MiB per tile: the frame needs several MiB of stack
    x = random_array(rng, (t, t), np.float32) / 4
    y = np.zeros((1, 3 * t), np.float32)
    tw.launch(None, (3,), big_tiles, (x, y, t))
    u = np.exp(x.astype(np.float64) * 0.5) + x.T
    want = u.sum(axis=0) + u.max()
    np.testing.assert_allclose(y.reshape(3, t), np.broadcast_to(want, (3, t)), rtol=1e-5)


def test_code_and_binary():
    x = np.zeros(100, np.float32)
    c = tw.compile(vadd, (x, x, x, 64), target="cpu")
    assert "define" in c.code and "tw_run" in c.code
    assert vectorised(c.code, "float")   # the tile loop was vectorised
    assert c.binary[:4] == b"\x7fELF" if os.name == "posix" else len(c.binary) > 0
    assert set(c.resources) == {"vector_bytes", "vector_registers"}  # the target's vectors


def test_unknown_op_is_refused_at_compile_time():
    fn = Function("k", [], [])
    fn.body.ops.append(Op("frobnicate", [], {}, [scalar(D.int32)], loc=(__file__, 1, 0)))
    fn.body.ops.append(Op("return", [], {}, []))
    with pytest.raises(tw.TileUnsupportedError, match="frobnicate"):
        CpuBackend().compile(fn)


@tw.kernel
def checked(x, y):
    v = tw.load(x, tw.bid(0), shape=1).item()
    tw.assert_(v >= 0, "negative input")
    tw.store(y, tw.bid(0), v)


def test_assert_fails_with_the_block():
    x = np.arange(10, dtype=np.int32)
    y = np.zeros(10, np.int32)
    tw.launch(None, (10,), checked, (x, y))
    np.testing.assert_array_equal(y, x)
    x[7] = -1
    with pytest.raises(tw.TileAssertionError, match=r"block \(7, 0, 0\).*negative input"):
        tw.launch(None, (10,), checked, (x, np.zeros(10, np.int32)))


@tw.kernel
def printer(x):
    t = tw.load(x, index=(0,), shape=(4,))
    b = tw.bid(0)
    tw.printf("block %d max %5.2f\n", b, tw.max(t))
    if b % 2 == 1:
        print(f"odd {b} sum={tw.sum(t):.1f}", t > 1)


def test_printf_prints_what_the_reference_prints_in_block_order(monkeypatch, capsys):
    x = np.array([0.5, 1.25, 2.0, 3.0], np.float32)
    printed = {}
    for name in ("reference", "cpu"):
        monkeypatch.setenv("TILEWISE_BACKEND", name)
        tw.launch(None, (6,), printer, (x,))
        printed[name] = capsys.readouterr().out.splitlines()
    assert sorted(printed["cpu"]) == sorted(printed["reference"])  # the reference prints op by op
    want = []
    for b in range(6):
        want.append(f"block {b} max  3.00")
        if b % 2:
            want.append(f"odd {b} sum=6.8 [False,  True,  True,  True]")
    assert printed["cpu"] == want


@tw.kernel
def undetermined(x, y, T: tw.Constant[int]):
    tw.store(y, 0, tw.load(x, 0, shape=T))


def test_poison_padding(monkeypatch):
    x, y = np.ones(3, np.float32), np.zeros(8, np.float32)
    tw.launch(None, 1, undetermined, (x, y, 8))
    np.testing.assert_array_equal(y, [1, 1, 1, 0, 0, 0, 0, 0])
    monkeypatch.setenv("TILEWISE_POISON", "1")
    tw.launch(None, 1, undetermined, (x, y, 8))
    assert np.isnan(y[3:]).all() and (y[:3] == 1).all()


def test_cpu_can_be_switched_off():
    import subprocess
    import sys
    code = "from tilewise import backends; print('cpu' in backends.available())"
    env = {k: v for k, v in os.environ.items() if k != "TILEWISE_ENABLE_CPU"}
    for flag, want in ((None, "True"), ("0", "False")):
        if flag:
            env["TILEWISE_ENABLE_CPU"] = flag
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert r.stdout.strip() == want
