"""cuTile-style matmul: a 1-D grid with grouped (swizzled) tile order computed by helper functions,
tf32 conversion of fp32 inputs, a static persistent variant, and split-K with atomic_add."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]


def tile_coords(M, N, tm, tn, GROUP, bid):
    """Grouped ordering of output tiles (plain helper, inlined by the compiler)."""
    n_m = ct.cdiv(M, tm)
    n_n = ct.cdiv(N, tn)
    per_group = GROUP * n_n
    first_m = (bid // per_group) * GROUP
    group_rows = min(n_m - first_m, GROUP)
    return first_m + (bid % group_rows), (bid % per_group) // group_rows


def my_tile_coords(M, N, tm, tn, GROUP):
    return tile_coords(M, N, tm, tn, GROUP, ct.bid(0))


@ct.kernel(num_ctas=ct.ByTarget(sm_100=2))
def matmul(A, B, C, tm: ConstInt, tn: ConstInt, tk: ConstInt):
    M = A.shape[0]
    N = B.shape[1]
    bm, bn = my_tile_coords(M, N, tm, tn, 8)
    acc = ct.full((tm, tn), 0, dtype=ct.float64 if A.dtype == ct.float64 else ct.float32)
    dtype = ct.tfloat32 if A.dtype == ct.float32 else A.dtype
    pad = ct.PaddingMode.ZERO
    for k in range(ct.num_tiles(A, axis=1, shape=(tm, tk))):
        a = ct.load(A, index=(bm, k), shape=(tm, tk), padding_mode=pad).astype(dtype)
        b = ct.load(B, index=(k, bn), shape=(tk, tn), padding_mode=pad).astype(dtype)
        acc = ct.mma(a, b, acc)
    ct.store(C, index=(bm, bn), tile=ct.astype(acc, C.dtype))


@ct.kernel
def matmul_persistent(A, B, C, tm: ConstInt, tn: ConstInt, tk: ConstInt):
    M = A.shape[0]
    N = B.shape[1]
    k_tiles = ct.num_tiles(A, axis=1, shape=(tm, tk))
    total = ct.cdiv(M, tm) * ct.cdiv(N, tn)
    for t in range(ct.bid(0), total, ct.num_blocks(0)):
        acc = ct.full((tm, tn), 0, dtype=ct.float32)
        bm, bn = tile_coords(M, N, tm, tn, 4, t)
        for k in range(k_tiles):
            a = ct.load(A, index=(bm, k), shape=(tm, tk), padding_mode=ct.PaddingMode.ZERO)
            b = ct.load(B, index=(k, bn), shape=(tk, tn), padding_mode=ct.PaddingMode.ZERO)
            acc = ct.mma(a, b, acc=acc)
        ct.store(C, index=(bm, bn), tile=ct.astype(acc, C.dtype))


@ct.kernel
def matmul_split_k(A, B, C, tm: ConstInt, tn: ConstInt, tk: ConstInt, SPLIT_K: ConstInt):
    bm, bn, split = ct.bid(0), ct.bid(1), ct.bid(2)
    k_tiles = ct.num_tiles(A, axis=1, shape=(tm, tk))
    per_split = ct.cdiv(k_tiles, SPLIT_K)
    acc = ct.zeros((tm, tn), dtype=ct.float32)
    for k in range(split * per_split, min((split + 1) * per_split, k_tiles)):
        a = ct.load(A, index=(bm, k), shape=(tm, tk), padding_mode=ct.PaddingMode.ZERO)
        b = ct.load(B, index=(k, bn), shape=(tk, tn), padding_mode=ct.PaddingMode.ZERO)
        acc = ct.mma(a, b, acc)
    rows = bm * tm + ct.arange(tm, dtype=ct.int32)
    cols = bn * tn + ct.arange(tn, dtype=ct.int32)
    ct.atomic_add(C, (rows[:, None], cols[None, :]), acc, memory_order=ct.MemoryOrder.RELAXED)


@ct.kernel
def matmul_transposed_b(A, Bt, C, tm: ConstInt, tn: ConstInt, tk: ConstInt, VIA_ORDER: ct.Constant[bool]):
    bm, bn = ct.bid(0), ct.bid(1)
    acc = ct.zeros((tm, tn), dtype=ct.float32)
    for k in range(ct.num_tiles(A, 1, (tm, tk))):
        a = ct.load(A, (bm, k), shape=(tm, tk), padding_mode=ct.PaddingMode.ZERO)
        if VIA_ORDER:
            b = ct.load(Bt, (k, bn), shape=(tk, tn), order=(1, 0), padding_mode=ct.PaddingMode.ZERO)
        else:
            b = ct.transpose(ct.load(Bt, (bn, k), shape=(tn, tk), padding_mode=ct.PaddingMode.ZERO))
        acc = acc + a @ b
    ct.store(C, (bm, bn), tile=acc.astype(C.dtype))


def _ref(a, b):
    return a.astype(np.float64) @ b.astype(np.float64)


SHAPES = [(1, 1, 1), (32, 32, 32), (70, 50, 45), (100, 33, 130)]


@pytest.mark.parametrize("M,N,K", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_matmul(backend, rng, M, N, K, dtype):
    a, b = rng.standard_normal((M, K)).astype(dtype), rng.standard_normal((K, N)).astype(dtype)
    c = np.empty((M, N), dtype)
    tm, tn, tk = 32, 16, 16
    ct.launch(None, (ct.cdiv(M, tm) * ct.cdiv(N, tn), 1, 1), matmul, (a, b, c, tm, tn, tk))
    # tf32 keeps 10 mantissa bits; fp16 output rounds to 11 bits.
    tol = {np.float32: 5e-3, np.float16: 1e-2, np.float64: 1e-12}[dtype]
    np.testing.assert_allclose(c, _ref(a, b), rtol=tol, atol=tol * np.sqrt(K))


@pytest.mark.parametrize("M,N,K,grid", [(64, 64, 40, 3), (90, 20, 17, 5), (8, 8, 8, 4)])
def test_matmul_persistent(backend, rng, M, N, K, grid):
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    c = np.full((M, N), np.nan, np.float32)
    ct.launch(None, (grid,), matmul_persistent, (a, b, c, 16, 16, 16))
    np.testing.assert_allclose(c, _ref(a, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("M,N,K,split", [(40, 24, 100, 3), (16, 16, 16, 2), (33, 17, 70, 4)])
def test_matmul_split_k(backend, rng, M, N, K, split):
    a, b = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((K, N)).astype(np.float32)
    c = np.zeros((M, N), np.float32)
    tm, tn, tk = 16, 8, 16
    ct.launch(None, (ct.cdiv(M, tm), ct.cdiv(N, tn), split), matmul_split_k, (a, b, c, tm, tn, tk, split))
    np.testing.assert_allclose(c, _ref(a, b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("via_order", [True, False])
def test_matmul_transposed_b(backend, rng, via_order):
    M, N, K = 30, 20, 50
    a, bt = rng.standard_normal((M, K)).astype(np.float32), rng.standard_normal((N, K)).astype(np.float32)
    c = np.empty((M, N), np.float32)
    ct.launch(None, (ct.cdiv(M, 16), ct.cdiv(N, 8)), matmul_transposed_b, (a, bt, c, 16, 8, 16, via_order))
    np.testing.assert_allclose(c, _ref(a, bt.T), rtol=1e-4, atol=1e-4)


def test_matmul_torch(backend):
    torch = pytest.importorskip("torch")
    a, b = torch.randn(50, 70, dtype=torch.float16), torch.randn(70, 40, dtype=torch.float16)
    c = torch.empty(50, 40, dtype=torch.float16)
    ct.launch(None, (ct.cdiv(50, 32) * ct.cdiv(40, 32),), matmul, (a, b, c, 32, 32, 32))
    torch.testing.assert_close(c, (a.double() @ b.double()).half(), rtol=1e-2, atol=5e-2)
    a32, b32 = a.float(), b.float()
    c32 = torch.zeros(50, 40, dtype=torch.float32)
    ct.launch(None, (ct.cdiv(50, 16), ct.cdiv(40, 16), 2), matmul_split_k, (a32, b32, c32, 16, 16, 16, 2))
    torch.testing.assert_close(c32, a32 @ b32, rtol=1e-4, atol=1e-4)
