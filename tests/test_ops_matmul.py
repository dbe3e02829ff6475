"""matmul, mma and @ against NumPy (float64 reference): dtypes, accumulators, batches, odd shapes, K loops."""
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw

NP = {"bfloat16": ml_dtypes.bfloat16, "float8_e4m3fn": ml_dtypes.float8_e4m3fn,
      "float8_e5m2": ml_dtypes.float8_e5m2}


def npdt(name):
    return np.dtype(NP.get(name, name))


@tw.kernel
def gemm(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int], ACC: tw.Constant[object]):
    """c = a @ b with a K loop; the last K tile is partial when K % TK != 0 (zero padding)."""
    i, j = tw.bid(0), tw.bid(1)
    acc = tw.zeros((TM, TN), ACC)
    for k in range(tw.num_tiles(a, axis=1, shape=(TM, TK))):
        x = tw.load(a, (i, k), shape=(TM, TK), padding_mode=tw.PaddingMode.ZERO)
        y = tw.load(b, (k, j), shape=(TK, TN), padding_mode=tw.PaddingMode.ZERO)
        acc = tw.mma(x, y, acc)
    tw.store(c, (i, j), acc.astype(c.dtype))


def run_gemm(a, b, out_dt, tiles, acc):
    m, n = a.shape[0], b.shape[1]
    c = np.zeros((m, n), out_dt)
    tm, tn, tk = tiles
    tw.launch(None, (tw.cdiv(m, tm), tw.cdiv(n, tn)), gemm, (a, b, c, tm, tn, tk, acc))
    return c


def ref(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


@pytest.mark.parametrize("m,n,k,tiles", [(16, 16, 16, (16, 16, 16)), (33, 17, 45, (16, 8, 16)),
                                         (5, 7, 3, (8, 8, 8)), (12, 10, 20, (6, 5, 7)), (1, 1, 1, (1, 1, 1))])
def test_gemm_fp32_shapes(backend, rng, m, n, k, tiles):
    a, b = random_array(rng, (m, k), np.float32), random_array(rng, (k, n), np.float32)
    c = run_gemm(a, b, np.float32, tiles, tw.float32)
    np.testing.assert_allclose(c, ref(a, b), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dt,acc,tol", [("float64", tw.float64, 1e-12), ("float16", tw.float32, 1e-5),
                                        ("bfloat16", tw.float32, 1e-5), ("float8_e4m3fn", tw.float32, 1e-5),
                                        ("float8_e5m2", tw.float32, 1e-5), ("float16", tw.float16, 2e-2)])
def test_gemm_input_dtypes(backend, rng, dt, acc, tol):
    a = random_array(rng, (24, 40), np.float32).astype(npdt(dt))
    b = random_array(rng, (40, 20), np.float32).astype(npdt(dt))
    c = run_gemm(a, b, acc.np, (8, 8, 16), acc)
    # narrow inputs are exact in the wide accumulator; only the accumulation rounds
    np.testing.assert_allclose(c.astype(np.float64), ref(a, b), rtol=tol, atol=tol * 40)


def test_gemm_int8_to_int32(backend, rng):
    a = rng.integers(-128, 128, (19, 70)).astype(np.int8)
    b = rng.integers(-128, 128, (70, 9)).astype(np.int8)
    c = run_gemm(a, b, np.int32, (8, 4, 32), tw.int32)
    np.testing.assert_array_equal(c, a.astype(np.int32) @ b.astype(np.int32))


@tw.kernel
def matmul_forms(a, b, out, M: tw.Constant[int], N: tw.Constant[int], K: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, K))
    y = tw.load(b, (0, 0), shape=(K, N))
    p = x @ y
    q = tw.matmul(x, y)
    r = tw.mma(x, y, tw.full((M, N), 1.0, tw.float32))
    assert p.dtype is x.dtype and q.dtype is x.dtype and r.dtype is tw.float32
    tw.store(out, (0, 0, 0), p[None, :, :].astype(tw.float32))
    tw.store(out, (1, 0, 0), q[None, :, :].astype(tw.float32))
    tw.store(out, (2, 0, 0), r[None, :, :])


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_matmul_operator_and_function(backend, rng, dt):
    m, n, k = 7, 5, 9
    a = random_array(rng, (m, k), np.float32).astype(npdt(dt))
    b = random_array(rng, (k, n), np.float32).astype(npdt(dt))
    out = np.zeros((3, m, n), np.float32)
    tw.launch(None, (1,), matmul_forms, (a, b, out, m, n, k))
    want = ref(a, b)
    rtol = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1.6e-2}[dt]
    for got in out[:2]:  # @ and matmul round the result to the input dtype
        np.testing.assert_allclose(got, want.astype(npdt(dt)).astype(np.float32), rtol=rtol, atol=rtol * 8)
    np.testing.assert_allclose(out[2], want + 1, rtol=1e-5, atol=1e-5)


@tw.kernel
def mixed_matmul(a, b, out, M: tw.Constant[int], N: tw.Constant[int], K: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, K))
    y = tw.load(b, (0, 0), shape=(K, N))
    p = x @ y          # f16 @ f32 promotes to f32
    assert p.dtype is tw.float32
    tw.store(out, (0, 0), p)


def test_matmul_promotes_mixed_inputs(backend, rng):
    a = random_array(rng, (4, 6), np.float16)
    b = random_array(rng, (6, 3), np.float32)
    out = np.zeros((4, 3), np.float32)
    tw.launch(None, (1,), mixed_matmul, (a, b, out, 4, 3, 6))
    np.testing.assert_allclose(out, ref(a, b), rtol=1e-5, atol=1e-5)


@tw.kernel
def batched(a, b, c, B: tw.Constant[int], M: tw.Constant[int], N: tw.Constant[int], K: tw.Constant[int]):
    x = tw.load(a, (tw.bid(0), 0, 0), shape=(B, M, K))
    y = tw.load(b, (tw.bid(0), 0, 0), shape=(B, K, N))
    w = tw.load(b, (0, 0, 0), shape=(1, K, N))              # broadcast over the batch
    acc = tw.mma(x, y, tw.zeros((B, M, N), tw.float32))
    tw.store(c, (tw.bid(0), 0, 0), acc + x @ w.astype(x.dtype))


@pytest.mark.parametrize("dt", ["float32", "float16"])
def test_batched_matmul(backend, rng, dt):
    bt, m, n, k = 5, 3, 6, 7
    a = random_array(rng, (bt, m, k), dt)
    b = random_array(rng, (bt, k, n), dt)
    c = np.zeros((bt, m, n), np.float32)
    tw.launch(None, (tw.cdiv(bt, 2),), batched, (a, b, c, 2, m, n, k))
    want = ref(a, b)
    x_at_w = a.astype(np.float64) @ b[0].astype(np.float64)  # every block's w is b[0]
    rtol = 1e-5 if dt == "float32" else 2e-3
    np.testing.assert_allclose(c, want + x_at_w.astype(npdt(dt)), rtol=rtol, atol=rtol * 10)


def test_matmul_shape_mismatch_is_an_error(backend):
    @tw.kernel
    def bad(a, c):
        x = tw.load(a, (0, 0), shape=(4, 3))
        tw.store(c, (0, 0), x @ x)

    with pytest.raises(tw.TileTypeError, match="inner") as e:
        tw.launch(None, (1,), bad, (np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32)))
    assert e.value.loc[0] == __file__


def test_matmul_of_int8_returns_int32(backend, rng):
    a = rng.integers(-128, 128, (8, 40)).astype(np.int8)
    b = rng.integers(-128, 128, (40, 4)).astype(np.int8)
    out = np.zeros((8, 4), np.int32)

    @tw.kernel
    def k(A, B, C):
        c = tw.matmul(tw.load(A, (0, 0), (8, 40)), tw.load(B, (0, 0), (40, 4)))
        tw.static_assert(c.dtype == tw.int32, "int8 @ int8 gives int32")
        tw.store(C, (0, 0), c)

    tw.launch(None, (1,), k, (a, b, out))
    np.testing.assert_array_equal(out, a.astype(np.int64) @ b.astype(np.int64))
