"""cuTile-style grouped GEMM: lists of arrays (`len(As)`, `As[g]`) walked with `ct.static_iter`,
each group's output tiles claimed by a persistent while loop over a shared tile counter."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]
ConstBool = ct.Constant[bool]


@ct.kernel
def group_gemm(As, Bs, Cs, TILE_M: ConstInt, TILE_N: ConstInt, TILE_K: ConstInt, NUM_SM: ConstInt,
               TRANSPOSE_B: ConstBool):
    tile = ct.bid(0)
    start = 0
    for g in ct.static_iter(range(len(As))):
        A, B, C = As[g], Bs[g], Cs[g]
        m_tiles = ct.num_tiles(A, 0, (TILE_M, TILE_K))
        k_tiles = ct.num_tiles(A, 1, (TILE_M, TILE_K))
        if TRANSPOSE_B:
            n_tiles = ct.num_tiles(B, 0, (TILE_N, TILE_K))
        else:
            n_tiles = ct.num_tiles(B, 1, (TILE_K, TILE_N))
        count = m_tiles * n_tiles
        while tile >= start and tile < start + count:
            local = tile - start
            acc = ct.zeros((TILE_M, TILE_N), dtype=ct.float32)
            for kk in range(k_tiles):
                ta = ct.load(A, (local // n_tiles, kk), shape=(TILE_M, TILE_K), padding_mode=ct.PaddingMode.ZERO)
                if TRANSPOSE_B:
                    tb = ct.transpose(ct.load(B, (local % n_tiles, kk), shape=(TILE_N, TILE_K),
                                              padding_mode=ct.PaddingMode.ZERO))
                else:
                    tb = ct.load(B, (kk, local % n_tiles), shape=(TILE_K, TILE_N), padding_mode=ct.PaddingMode.ZERO)
                acc = ct.mma(ta, tb, acc)
            ct.store(C, (local // n_tiles, local % n_tiles), tile=ct.astype(acc, C.dtype))
            tile += NUM_SM
        start = start + count


@ct.kernel
def group_scale(Xs, Ys, scales, TILE: ConstInt):
    # A runtime-bounded loop over a compile-time list: unrolled because `Xs[g]` needs a constant g.
    for g in range(len(Xs)):
        s = ct.load(scales, index=(g,), shape=(1,)).item()
        x = ct.load(Xs[g], index=(ct.bid(0),), shape=(TILE,))
        ct.store(Ys[g], index=(ct.bid(0),), tile=x * s)


def _problems(rng, shapes, transpose_b, dtype):
    As = [rng.standard_normal((m, k)).astype(dtype) for m, n, k in shapes]
    Bs = [rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype) for m, n, k in shapes]
    Cs = [np.full((m, n), np.nan, dtype) for m, n, k in shapes]
    return As, Bs, Cs


@pytest.mark.parametrize("transpose_b", [False, True])
@pytest.mark.parametrize("num_sm", [1, 3, 64])
def test_group_gemm(backend, rng, transpose_b, num_sm):
    shapes = [(20, 16, 24), (1, 1, 1), (33, 40, 17)]
    As, Bs, Cs = _problems(rng, shapes, transpose_b, np.float32)
    ct.launch(None, (num_sm, 1, 1), group_gemm, (As, Bs, Cs, 16, 16, 8, num_sm, transpose_b))
    for a, b, c in zip(As, Bs, Cs):
        ref = a.astype(np.float64) @ (b.T if transpose_b else b)
        np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4)


def test_group_gemm_tuple_fp16(backend, rng):
    As, Bs, Cs = _problems(rng, [(16, 16, 16), (30, 10, 50)], False, np.float16)
    ct.launch(None, (4,), group_gemm.replace_hints(occupancy=2), (tuple(As), tuple(Bs), tuple(Cs), 16, 16, 16, 4,
                                                                  False))
    for a, b, c in zip(As, Bs, Cs):
        np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-2, atol=5e-2)


def test_group_scale(backend, rng):
    Xs = [rng.standard_normal(40).astype(np.float32) for _ in range(3)]
    Ys = [np.empty(40, np.float32) for _ in range(3)]
    scales = np.array([2.0, -1.0, 0.5], np.float32)
    ct.launch(None, (ct.cdiv(40, 16),), group_scale, (Xs, Ys, scales, 16))
    for x, y, s in zip(Xs, Ys, scales):
        np.testing.assert_array_equal(y, x * s)


def test_group_gemm_torch(backend):
    torch = pytest.importorskip("torch")
    As = [torch.randn(24, 20), torch.randn(9, 31)]
    Bs = [torch.randn(20, 12), torch.randn(31, 5)]
    Cs = [torch.empty(24, 12), torch.empty(9, 5)]
    ct.launch(None, (2,), group_gemm, (As, Bs, Cs, 16, 16, 16, 2, False))
    for a, b, c in zip(As, Bs, Cs):
        torch.testing.assert_close(c, a @ b, rtol=1e-4, atol=1e-4)
