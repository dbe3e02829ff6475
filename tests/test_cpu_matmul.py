"""The cpu backend's register-blocked matmul (backends/cpu/matmul.py) against NumPy in float64 on fresh
random data: tile shapes that hit every edge of the MR x NR blocking (1-element dims, row and column
remainders, vectors narrower than a register), partial tiles at array edges, nonzero accumulators,
transposed and strided inputs, batches, and every input dtype matmul takes."""
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw
from tilewise.backends.cpu import matmul as cpu_matmul
from tilewise.backends.reference.semantics import _round_tf32
from tilewise.ir import dtypes as D

ZERO = tw.PaddingMode.ZERO
FLOATS = {"float64": (np.float64, tw.float64), "float32": (np.float32, tw.float32),
          "tfloat32": (np.float32, tw.tfloat32), "float16": (np.float16, tw.float16),
          "bfloat16": (ml_dtypes.bfloat16, tw.bfloat16), "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, tw.float8_e4m3fn),
          "float8_e5m2": (ml_dtypes.float8_e5m2, tw.float8_e5m2)}
INTS = {"int8": tw.int8, "uint8": tw.uint8, "int16": tw.int16, "int32": tw.int32, "int64": tw.int64, "bool": tw.bool_}


@pytest.fixture(autouse=True)
def cpu(monkeypatch):
    """This file tests the cpu backend's kernel; test_ops_matmul.py runs matmul on every backend."""
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")


@tw.kernel
def tile_mma(a, b, acc, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int],
             IN: tw.Constant[object]):
    i, j = tw.bid(0), tw.bid(1)
    x = tw.load(a, (i, 0), shape=(TM, TK), padding_mode=ZERO).astype(IN)
    y = tw.load(b, (0, j), shape=(TK, TN), padding_mode=ZERO).astype(IN)
    r = tw.mma(x, y, tw.load(acc, (i, j), shape=(TM, TN), padding_mode=ZERO))
    tw.store(c, (i, j), r)


@tw.kernel
def tile_matmul(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int], IN: tw.Constant[object]):
    i, j = tw.bid(0), tw.bid(1)
    x = tw.load(a, (i, 0), shape=(TM, TK), padding_mode=ZERO).astype(IN)
    y = tw.load(b, (0, j), shape=(TK, TN), padding_mode=ZERO).astype(IN)
    tw.store(c, (i, j), tw.matmul(x, y))


@tw.kernel
def tile_mma_t(at, b, acc, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    """A arrives transposed (K x M in memory); the tile is transposed back in the kernel."""
    i, j = tw.bid(0), tw.bid(1)
    x = tw.load(at, (0, i), shape=(TK, TM), padding_mode=ZERO).T
    y = tw.load(b, (0, j), shape=(TK, TN), padding_mode=ZERO)
    tw.store(c, (i, j), tw.mma(x, y, tw.load(acc, (i, j), shape=(TM, TN), padding_mode=ZERO)))


@tw.kernel
def gemm_kloop(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    acc = tw.full((TM, TN), 0.5, tw.float32)
    for k in range(tw.num_tiles(a, axis=1, shape=(TM, TK))):
        acc = tw.mma(tw.load(a, (i, k), shape=(TM, TK), padding_mode=ZERO),
                     tw.load(b, (k, j), shape=(TK, TN), padding_mode=ZERO), acc)
    tw.store(c, (i, j), acc)


@tw.kernel
def batched_mma(a, b, acc, c, B: tw.Constant[int], M: tw.Constant[int], N: tw.Constant[int], K: tw.Constant[int]):
    x = tw.load(a, (0, 0, 0), shape=(B, M, K))
    y = tw.load(b, (0, 0, 0), shape=(B, K, N))
    tw.store(c, (0, 0, 0), tw.mma(x, y, tw.load(acc, (0, 0, 0), shape=(B, M, N))))


def extent(t):
    """An array extent for tile size t: more than one tile, the last one partial when t > 2."""
    return t + t // 2 + 1


def grid(m, n, tm, tn):
    return (tw.cdiv(m, tm), tw.cdiv(n, tn))


def f64(x):
    return np.asarray(x).astype(np.float64)


def assert_close(got, a, b, acc, k, work_eps, out_eps):
    """|got - exact| within the accumulation bound (k + 2) eps sum|a||b| plus one rounding to the output."""
    want = f64(a) @ f64(b)
    bound = np.abs(f64(a)) @ np.abs(f64(b))
    if acc is not None:
        want, bound = want + f64(acc), bound + np.abs(f64(acc))
    tol = (k + 2) * work_eps * bound + out_eps * np.abs(want) + 1e-300
    err = np.abs(f64(got) - want)
    assert np.all(err <= tol), f"max err {err.max():.3e}, worst at {np.unravel_index(np.argmax(err - tol), err.shape)}"


EPS32, EPS64 = 2.0 ** -23, 2.0 ** -52
TILES = [(1, 1, 1), (1, 16, 3), (3, 17, 16), (17, 3, 64), (64, 64, 64), (128, 17, 1), (17, 128, 17), (64, 1, 128),
         (3, 128, 128), (13, 31, 17)]


@pytest.mark.parametrize("tm,tn,tk", TILES)
def test_fp32_tile_shapes_with_accumulator(rng, tm, tn, tk):
    m, n, k = extent(tm), extent(tn), tk - 1 if tk > 16 else tk  # a partial K tile when tk > 16
    a, b = random_array(rng, (m, k), np.float32), random_array(rng, (k, n), np.float32)
    acc = random_array(rng, (m, n), np.float32)
    c = np.full((m, n), np.nan, np.float32)
    tw.launch(None, grid(m, n, tm, tn), tile_mma, (a, b, acc, c, tm, tn, tk, tw.float32))
    assert_close(c, a, b, acc, k, EPS32, EPS32)


@pytest.mark.parametrize("tm,tn,tk", [(1, 1, 1), (3, 17, 16), (64, 15, 17), (16, 64, 3)])
def test_fp64_tile_shapes(rng, tm, tn, tk):
    m, n, k = extent(tm), extent(tn), tk
    a, b = random_array(rng, (m, k), np.float64), random_array(rng, (k, n), np.float64)
    acc = random_array(rng, (m, n), np.float64)
    c = np.full((m, n), np.nan)
    tw.launch(None, grid(m, n, tm, tn), tile_mma, (a, b, acc, c, tm, tn, tk, tw.float64))
    assert_close(c, a, b, acc, k, EPS64, EPS64)


@pytest.mark.parametrize("name", list(FLOATS))
def test_float_input_dtypes_mma(rng, name, tiles=(17, 31, 16)):
    """Narrow inputs are exact in the float32 (float64 for float64) work type: only the sum rounds."""
    npdt, twdt = FLOATS[name]
    tm, tn, tk = tiles
    m, n, k = extent(tm), extent(tn), tk
    a = random_array(rng, (m, k), np.float32).astype(npdt)
    b = random_array(rng, (k, n), np.float32).astype(npdt)
    acc_dt = np.float64 if name == "float64" else np.float32
    acc = random_array(rng, (m, n), acc_dt)
    c = np.full((m, n), np.nan, acc_dt)
    tw.launch(None, grid(m, n, tm, tn), tile_mma, (a, b, acc, c, tm, tn, tk, twdt))
    if name == "tfloat32":
        a, b = _round_tf32(a), _round_tf32(b)
    eps = EPS64 if name == "float64" else EPS32
    assert_close(c, a, b, acc, k, eps, eps)


@pytest.mark.parametrize("name", ["float64", "float32", "tfloat32", "float16", "bfloat16"])
def test_float_input_dtypes_matmul(rng, name):
    """Without an accumulator the result has the input dtype (float32 for tf32): one final rounding."""
    npdt, twdt = FLOATS[name]
    tm, tn, tk = 13, 17, 16
    m, n, k = extent(tm), extent(tn), tk
    a = random_array(rng, (m, k), np.float32).astype(npdt)
    b = random_array(rng, (k, n), np.float32).astype(npdt)
    out_np = np.float32 if name == "tfloat32" else npdt
    c = np.zeros((m, n), out_np)
    tw.launch(None, grid(m, n, tm, tn), tile_matmul, (a, b, c, tm, tn, tk, twdt))
    if name == "tfloat32":
        a, b = _round_tf32(a), _round_tf32(b)
    work = EPS64 if name == "float64" else EPS32
    assert_close(c, a, b, None, k, work, float(ml_dtypes.finfo(out_np).eps))


def test_mixed_work_types(rng):
    """float32 inputs into a float64 accumulator compute in float64; float16 into float16 in float32."""
    m, n, k = 7, 9, 33
    a, b = random_array(rng, (m, k), np.float32), random_array(rng, (k, n), np.float32)
    acc = random_array(rng, (m, n), np.float64)
    c = np.zeros((m, n))
    tw.launch(None, (1, 1), tile_mma, (a, b, acc, c, 8, 16, k, tw.float32))
    assert_close(c, a, b, acc, k, EPS64, EPS64)
    h = [random_array(rng, s, np.float16) for s in ((m, k), (k, n), (m, n))]
    c16 = np.zeros((m, n), np.float16)
    tw.launch(None, (1, 1), tile_mma, (*h, c16, 8, 16, k, tw.float16))
    assert_close(c16, *h, k, EPS32, 2.0 ** -10)


@pytest.mark.parametrize("name", list(INTS))
def test_integer_and_bool_inputs(rng, name):
    """Integer products are exact and wrap: int32 inputs span the whole range so the sums overflow."""
    twdt = INTS[name]
    tm, tn, tk = 16, 17, 16
    m, n, k = extent(tm), extent(tn), tk + 3
    if name == "int32":
        a, b = (rng.integers(-2 ** 31, 2 ** 31, s, dtype=np.int64).astype(np.int32) for s in ((m, k), (k, n)))
    else:
        a, b = random_array(rng, (m, k), twdt.np), random_array(rng, (k, n), twdt.np)
    out = np.int64 if name == "int64" else np.int32
    c = np.zeros((m, n), out)
    tw.launch(None, grid(m, n, tm, tn), tile_matmul, (a, b, c, tm, tn, k, twdt))
    exact = a.astype(np.int64) @ b.astype(np.int64)  # NumPy's int64 matmul wraps as the kernel does
    np.testing.assert_array_equal(c, exact.astype(out))
    if name == "bool":
        return  # compiling a bool tile load is slow (several seconds); one kernel covers bool inputs
    acc = random_array(rng, (m, n), out)
    tw.launch(None, grid(m, n, tm, tn), tile_mma, (a, b, acc, c, tm, tn, k, twdt))
    np.testing.assert_array_equal(c, (exact + acc).astype(out))


@pytest.mark.parametrize("tm,tn,tk", [(17, 3, 64), (64, 64, 17)])
def test_transposed_and_strided_inputs(rng, tm, tn, tk):
    m, n, k = extent(tm), extent(tn), tk
    at = random_array(rng, (k, m), np.float32)                  # A^T, contiguous
    big = random_array(rng, (2 * k, 3 * n + 1), np.float32)
    b = big[::2, 1::3]                                           # a strided view
    acc = np.asfortranarray(random_array(rng, (m, n), np.float32))
    c = np.zeros((m, n), np.float32)
    tw.launch(None, grid(m, n, tm, tn), tile_mma_t, (at, b, acc, c, tm, tn, tk))
    assert_close(c, at.T, b, acc, k, EPS32, EPS32)
    c2 = np.zeros((m, n), np.float32)
    tw.launch(None, grid(m, n, tm, tn), tile_mma, (at.T, b, acc, c2, tm, tn, tk, tw.float32))  # a transposed view
    assert_close(c2, at.T, b, acc, k, EPS32, EPS32)


@pytest.mark.parametrize("m,n,k,tiles", [(100, 72, 90, (32, 32, 16)), (37, 53, 129, (16, 48, 64)),
                                         (5, 130, 7, (8, 64, 4))])
def test_k_loop(rng, m, n, k, tiles):
    a, b = random_array(rng, (m, k), np.float32), random_array(rng, (k, n), np.float32)
    c = np.zeros((m, n), np.float32)
    tm, tn, tk = tiles
    tw.launch(None, grid(m, n, tm, tn), gemm_kloop, (a, b, c, tm, tn, tk))
    assert_close(c, a, b, np.full((m, n), 0.5), k, EPS32, EPS32)


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_batched(rng, dt):
    bt, m, n, k = 3, 7, 19, 5
    a, b = random_array(rng, (bt, m, k), dt), random_array(rng, (bt, k, n), dt)
    acc = random_array(rng, (bt, m, n), dt)
    c = np.zeros((bt, m, n), dt)
    tw.launch(None, (1,), batched_mma, (a, b, acc, c, bt, m, n, k))
    eps = EPS32 if dt == np.float32 else EPS64
    for i in range(bt):
        assert_close(c[i], a[i], b[i], acc[i], k, eps, eps)


@tw.kernel
def carried(a, b, c, T: tw.Constant[int], N: tw.Constant[int]):
    x, y = tw.load(a, (0, 0), shape=(T, T)), tw.load(b, (0, 0), shape=(T, T))
    p, q, s = tw.full((T, T), 1.0, tw.float32), tw.full((T, T), 2.0, tw.float32), tw.zeros((T, T), tw.float32)
    for _ in range(N):
        p, q = tw.mma(x, y, q), p    # the result lands in the other carried slot
        s = tw.mma(x, y, s) + s      # the accumulator is read again after the product
    tw.store(c, (0, 0, 0), p[None, :, :])
    tw.store(c, (1, 0, 0), q[None, :, :])
    tw.store(c, (2, 0, 0), s[None, :, :])


def test_accumulators_carried_by_loops(rng):
    """mma may write its result over a loop-carried accumulator; swaps and later reads must not see it."""
    t, n = 19, 3
    a, b = random_array(rng, (t, t), np.float32) / 4, random_array(rng, (t, t), np.float32) / 4
    c = np.zeros((3, t, t), np.float32)
    tw.launch(None, (1,), carried, (a, b, c, t, n))
    xy = f64(a) @ f64(b)
    p, q, s = np.ones((t, t)), np.full((t, t), 2.0), np.zeros((t, t))
    for _ in range(n):
        p, q, s = xy + q, p, xy + 2 * s
    for got, want in zip(c, (p, q, s)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_specials_propagate(rng):
    """inf and NaN flow through the FMA chain as through a plain sum of products."""
    m, n, k = 7, 18, 5
    a, b = random_array(rng, (m, k), np.float32), random_array(rng, (k, n), np.float32)
    a[1, 2], a[3, 0], b[4, 17] = np.inf, np.nan, -np.inf
    c = np.zeros((m, n), np.float32)
    tw.launch(None, (1, 1), tile_mma, (a, b, np.zeros((m, n), np.float32), c, 8, 32, k, tw.float32))
    with np.errstate(invalid="ignore"):
        want = f64(a) @ f64(b)
    np.testing.assert_array_equal(np.isnan(c), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(c), np.isinf(want))
    fin = np.isfinite(want)
    np.testing.assert_allclose(c[fin], want[fin], rtol=1e-5, atol=1e-5)


def test_uses_host_vectors():
    """The block shape comes from the host's vector width, and the kernel's IR uses those vectors."""
    mr, nr, lanes = cpu_matmul.block_shape(D.float32)
    assert lanes in (4, 8, 16) and nr % lanes == 0 and mr >= 4
    assert cpu_matmul.block_shape(D.float64)[2] == lanes // 2
    x = np.zeros((32, 32), np.float32)
    exe = tw.compile(tile_mma, (x, x, x, x, 16, 16, 16, tw.float32), target="cpu")
    assert f"<{lanes} x float>" in exe.code
