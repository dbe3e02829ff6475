"""cuTile-style vector add: the tile-index form (load/store), the gather/scatter form, and a 2-D
variant, written as a cuTile program would be (`import tilewise as ct`, `ct.launch(stream, ...)`)."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]


@ct.kernel
def vec_add(a, b, c, TILE: ConstInt):
    bid = ct.bid(0)
    ta = ct.load(a, index=(bid,), shape=(TILE,))
    tb = ct.load(b, index=(bid,), shape=(TILE,))
    ct.store(c, index=(bid,), tile=ta + tb)


@ct.kernel
def vec_add_gather(a, b, c, TILE: ConstInt):
    offsets = ct.bid(0) * TILE + ct.arange(TILE, dtype=ct.int32)
    ta = ct.gather(a, offsets, latency=1)
    tb = ct.gather(b, offsets)
    ct.scatter(c, offsets, ct.add(ta, tb), latency=1)


@ct.kernel(occupancy=ct.ByTarget(sm_80=2, default=4))
def vec_add_2d(a, b, c, TM: ConstInt, TN: ConstInt):
    ta = ct.load(a, index=(ct.bid(0), ct.bid(1)), shape=(TM, TN), padding_mode=ct.PaddingMode.ZERO)
    tb = ct.load(b, index=(ct.bid(0), ct.bid(1)), shape=(TM, TN), padding_mode=ct.PaddingMode.ZERO)
    ct.store(c, index=(ct.bid(0), ct.bid(1)), tile=(ta + tb).astype(c.dtype))


def _run_1d(kernel, a, b, tile):
    c = np.empty_like(a)
    ct.launch(None, (ct.cdiv(a.shape[0], tile), 1, 1), kernel, (a, b, c, tile))
    return c


@pytest.mark.parametrize("n", [1, 127, 128, 1000])
@pytest.mark.parametrize("kernel", [vec_add, vec_add_gather], ids=["load_store", "gather_scatter"])
def test_vector_add(backend, rng, n, kernel):
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    np.testing.assert_array_equal(_run_1d(kernel, a, b, 128), a + b)


def test_vector_add_int_and_strided(backend, rng):
    a = rng.integers(-100, 100, 300).astype(np.int32)
    b = rng.integers(-100, 100, 600).astype(np.int32)[::2]  # strided view
    np.testing.assert_array_equal(_run_1d(vec_add, a, b, 64), a + b)


@pytest.mark.parametrize("shape", [(5, 7), (64, 32), (33, 70)])
def test_vector_add_2d(backend, rng, shape):
    a = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape).astype(np.float16)
    c = np.empty(shape, np.float32)
    ct.launch(None, (ct.cdiv(shape[0], 16), ct.cdiv(shape[1], 32)), vec_add_2d, (a, b, c, 16, 32))
    np.testing.assert_allclose(c, a + b.astype(np.float32), rtol=1e-6)


def test_vector_add_torch(backend):
    torch = pytest.importorskip("torch")
    a = torch.randn(1000, dtype=torch.float32)
    b = torch.randn(1000, dtype=torch.float32)
    c = torch.empty_like(a)
    ct.launch(None, (ct.cdiv(1000, 256),), vec_add, (a, b, c, 256))
    torch.testing.assert_close(c, a + b, rtol=0, atol=0)


def test_dtype_spellings_torch(backend):
    """Kernels name dtypes as ct.float32, np.float32 or torch.float32 interchangeably."""
    torch = pytest.importorskip("torch")

    @ct.kernel
    def scaled_sum(a, b, c, TILE: ConstInt):
        ta = ct.load(a, index=(ct.bid(0),), shape=(TILE,), padding_mode=ct.PaddingMode.ZERO).astype(torch.float32)
        tb = ct.astype(ct.load(b, index=(ct.bid(0),), shape=(TILE,)), np.float32)
        two = ct.full((TILE,), 2, dtype=torch.float32)
        ct.store(c, index=(ct.bid(0),), tile=(ta * two + tb).astype(torch.bfloat16))

    a = torch.randn(100, dtype=torch.bfloat16)
    b = torch.randn(100, dtype=torch.float16)
    c = torch.empty(100, dtype=torch.bfloat16)
    ct.launch(None, (ct.cdiv(100, 32),), scaled_sum, (a, b, c, 32))
    torch.testing.assert_close(c, (a.float() * 2 + b.float()).bfloat16(), rtol=0, atol=0)
