"""cuTile-style batched matmul: a 3-D grid (batch on axis 2) with 3-D loads reshaped to 2-D, and a
static persistent variant over (batch, m, n) tiles with transposed operands (`ct.permute`)."""
import numpy as np
import pytest

import tilewise as ct


@ct.kernel
def bmm(A, B, C, TM: ct.Constant[int], TN: ct.Constant[int], TK: ct.Constant[int]):
    bm, bn, q = ct.bid(0), ct.bid(1), ct.bid(2)
    acc = ct.full((TM, TN), 0.0, dtype=ct.float32)
    for k in range(ct.num_tiles(A, axis=2, shape=(1, TM, TK))):
        a = ct.reshape(ct.load(A, index=(q, bm, k), shape=(1, TM, TK), padding_mode=ct.PaddingMode.ZERO), (TM, TK))
        b = ct.reshape(ct.load(B, index=(q, k, bn), shape=(1, TK, TN), padding_mode=ct.PaddingMode.ZERO), (TK, TN))
        acc = ct.mma(a, b, acc=acc)
    ct.store(C, index=(q, bm, bn), tile=ct.reshape(ct.astype(acc, C.dtype), (1, TM, TN)))


@ct.kernel
def bmm_persistent(A, B, C, Batch, M: ct.Constant[int], N: ct.Constant[int], K: ct.Constant[int],
                   TILE_M: ct.Constant[int], TILE_N: ct.Constant[int], TILE_K: ct.Constant[int],
                   GROUP_M: ct.Constant[int], TRANS_A: ct.Constant[bool], TRANS_B: ct.Constant[bool]):
    n_m = ct.cdiv(M, TILE_M)
    n_n = ct.cdiv(N, TILE_N)
    for t in range(ct.bid(0), n_m * n_n * Batch, ct.num_blocks(0)):
        q = t // (n_m * n_n)
        t2 = t % (n_m * n_n)
        per_group = GROUP_M * n_n
        first_m = (t2 // per_group) * GROUP_M
        rows_in_group = ct.minimum(n_m - first_m, GROUP_M)
        bm = first_m + (t2 % rows_in_group)
        bn = (t2 % per_group) // rows_in_group
        acc = ct.full((TILE_M, TILE_N), 0.0, dtype=ct.float32)
        for k in range(ct.cdiv(K, TILE_K)):
            if TRANS_A:
                a3 = ct.load(A, index=(q, k, bm), shape=(1, TILE_K, TILE_M), order=(0, 1, 2),
                             padding_mode=ct.PaddingMode.ZERO, latency=3)
                a3 = ct.permute(a3, (0, 2, 1))
            else:
                a3 = ct.load(A, index=(q, bm, k), shape=(1, TILE_M, TILE_K), padding_mode=ct.PaddingMode.ZERO)
            if TRANS_B:
                b3 = ct.permute(ct.load(B, index=(q, bn, k), shape=(1, TILE_N, TILE_K),
                                        padding_mode=ct.PaddingMode.ZERO), (0, 2, 1))
            else:
                b3 = ct.load(B, index=(q, k, bn), shape=(1, TILE_K, TILE_N), padding_mode=ct.PaddingMode.ZERO)
            acc = ct.mma(ct.reshape(a3, (TILE_M, TILE_K)), ct.reshape(b3, (TILE_K, TILE_N)), acc=acc)
        ct.store(C, index=(q, bm, bn), tile=ct.reshape(ct.astype(acc, C.dtype), (1, TILE_M, TILE_N)),
                 order=(0, 1, 2), latency=3)


@ct.kernel
def bmm_broadcast_matmul(A, B, C, TM: ct.Constant[int], TN: ct.Constant[int], TK: ct.Constant[int],
                         BATCH: ct.Constant[int]):
    # The whole batch in one tile: a 3-D @ 2-D product broadcasts B over the batch.
    bm, bn = ct.bid(0), ct.bid(1)
    acc = ct.zeros((BATCH, TM, TN), dtype=ct.float32)
    for k in range(ct.num_tiles(A, 2, (BATCH, TM, TK))):
        a = ct.load(A, (0, bm, k), shape=(BATCH, TM, TK), padding_mode=ct.PaddingMode.ZERO)
        b = ct.load(B, (k, bn), shape=(TK, TN), padding_mode=ct.PaddingMode.ZERO)
        acc += ct.matmul(a, b)
    ct.store(C, (0, bm, bn), tile=acc.astype(C.dtype))


@pytest.mark.parametrize("Q,M,N,K", [(1, 1, 1, 1), (3, 32, 16, 48), (2, 45, 30, 20)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_bmm(backend, rng, Q, M, N, K, dtype):
    a, b = rng.standard_normal((Q, M, K)).astype(dtype), rng.standard_normal((Q, K, N)).astype(dtype)
    c = np.empty((Q, M, N), dtype)
    ct.launch(None, (ct.cdiv(M, 16), ct.cdiv(N, 16), Q), bmm, (a, b, c, 16, 16, 16))
    tol = 1e-4 if dtype == np.float32 else 1e-2
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=tol, atol=tol * 3)


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_bmm_persistent(backend, rng, trans_a, trans_b):
    Q, M, N, K = 3, 40, 24, 36
    a = rng.standard_normal((Q, K, M) if trans_a else (Q, M, K)).astype(np.float32)
    b = rng.standard_normal((Q, N, K) if trans_b else (Q, K, N)).astype(np.float32)
    c = np.empty((Q, M, N), np.float32)
    args = (a, b, c, Q, M, N, K, 16, 16, 16, 2, trans_a, trans_b)
    ct.launch(None, (5,), bmm_persistent, args)
    ra = a.transpose(0, 2, 1) if trans_a else a
    rb = b.transpose(0, 2, 1) if trans_b else b
    np.testing.assert_allclose(c, ra.astype(np.float64) @ rb, rtol=1e-4, atol=1e-4)


def test_bmm_broadcast_matmul(backend, rng):
    a = rng.standard_normal((4, 20, 30)).astype(np.float32)
    b = rng.standard_normal((30, 12)).astype(np.float32)
    c = np.empty((4, 20, 12), np.float32)
    ct.launch(None, (ct.cdiv(20, 8), ct.cdiv(12, 8)), bmm_broadcast_matmul, (a, b, c, 8, 8, 8, 4))
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)
