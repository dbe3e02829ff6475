"""cuTile-style 2-D transpose: load a tile, transpose it in registers (ct.transpose / ct.permute /
.T) and store it at the mirrored tile index; also a transpose done by the load's `order`."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]


@ct.kernel
def transpose_tile(src, dst, M: ConstInt, N: ConstInt, BM: ConstInt, BN: ConstInt):
    pm, pn = ct.bid(0), ct.bid(1)
    t = ct.load(src, index=(pm, pn), shape=(BM, BN), padding_mode=ct.PaddingMode.ZERO)
    ct.store(dst, index=(pn, pm), tile=ct.transpose(t))


@ct.kernel
def transpose_permute(src, dst, BM: ConstInt, BN: ConstInt, USE_T: ct.Constant[bool]):
    pm, pn = ct.bid(0), ct.bid(1)
    t = ct.load(src, index=(pm, pn), shape=(BM, BN), latency=2, allow_tma=True)
    if USE_T:
        out = t.T
    else:
        out = ct.permute(t, (1, 0))
    ct.store(dst, index=(pn, pm), tile=out, allow_tma=False, latency=3)


@ct.kernel
def transpose_by_order(src, dst, BM: ConstInt, BN: ConstInt):
    # order=(1, 0) views src as its transpose: the tile at (pn, pm) of that view is dst's tile.
    pm, pn = ct.bid(0), ct.bid(1)
    t = ct.load(src, index=(pn, pm), shape=(BN, BM), order=(1, 0))
    ct.store(dst, index=(pn, pm), tile=t)


@pytest.mark.parametrize("shape", [(1, 1), (64, 64), (50, 70), (129, 3)])
def test_transpose(backend, rng, shape):
    M, N = shape
    x = rng.standard_normal(shape).astype(np.float32)
    y = np.empty((N, M), np.float32)
    ct.launch(None, (ct.cdiv(M, 32), ct.cdiv(N, 16), 1), transpose_tile, (x, y, M, N, 32, 16))
    np.testing.assert_array_equal(y, x.T)


@pytest.mark.parametrize("use_t", [True, False])
def test_transpose_permute(backend, rng, use_t):
    x = rng.integers(-1000, 1000, (40, 24)).astype(np.int64)
    y = np.zeros((24, 40), np.int64)
    ct.launch(None, (ct.cdiv(40, 16), ct.cdiv(24, 8)), transpose_permute, (x, y, 16, 8, use_t))
    np.testing.assert_array_equal(y, x.T)


@pytest.mark.parametrize("shape", [(48, 20), (17, 33)])
def test_transpose_by_order(backend, rng, shape):
    x = rng.standard_normal(shape).astype(np.float16)
    y = np.empty(shape[::-1], np.float16)
    ct.launch(None, (ct.cdiv(shape[0], 16), ct.cdiv(shape[1], 8)), transpose_by_order, (x, y, 16, 8))
    np.testing.assert_array_equal(y, x.T)


def test_transpose_strided_input(backend, rng):
    base = rng.standard_normal((40, 60)).astype(np.float32)
    x = base[::2, 1::3]  # non-contiguous on both axes
    y = np.empty(x.shape[::-1], np.float32)
    ct.launch(None, (ct.cdiv(x.shape[0], 8), ct.cdiv(x.shape[1], 8)), transpose_tile,
              (x, y, x.shape[0], x.shape[1], 8, 8))
    np.testing.assert_array_equal(y, x.T)
