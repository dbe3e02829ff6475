"""Fusion in the cpu backend (backends/cpu/fusion.py): which tiles get no buffer, and that fusing never
changes a result (the reference backend is the oracle), including reads that must happen before a write."""
import re

import numpy as np
import pytest
from conftest import random_array, vectorised

import tilewise as tw
from tilewise.backends.cpu import streaming
from tilewise.tools.demo import softmax

pytestmark = pytest.mark.skipif("cpu" not in tw.backends.available(), reason="cpu backend not registered")


def _both(kernel, grid, make_args, monkeypatch):
    """Run on reference and cpu with identical inputs; returns both argument tuples after the launch."""
    out = []
    for name in ("reference", "cpu"):
        monkeypatch.setenv("TILEWISE_BACKEND", name)
        args = make_args()
        tw.launch(None, grid, kernel, args)
        out.append(args)
    return out


@tw.kernel
def add_store(a, b, c, T: tw.Constant[int]):
    tw.store(c, index=(tw.bid(0),), tile=tw.load(a, index=(tw.bid(0),), shape=(T,)) * 2.0
             + tw.load(b, index=(tw.bid(0),), shape=(T,), padding_mode=tw.PaddingMode.NAN))


def test_streaming_kernel_has_no_tile_buffers():
    """load + load + add + store: every tile is computed inside the store's loop. The only tile-sized
    buffers are the padded copies of the two loads that edge blocks read (fusion._with_checks), besides
    streaming stores' chunks."""
    a = np.ones(1000, np.float32)
    code = tw.compile(add_store, (a, a, a.copy(), 256), target="cpu").code
    buffers = re.findall(r"%([\w.\"]+) = alloca \[(\d+) x", code)
    tiles = [n for name, n in buffers if streaming.CHUNK_NAME not in name]
    assert tiles == ["256", "256"]
    assert vectorised(code, "float")


@pytest.mark.parametrize("n", [1, 255, 256, 1000])
def test_fused_loads_partial_and_strided(n, rng, monkeypatch):
    base_a = random_array(rng, 2 * n, np.float32)
    base_b = random_array(rng, n, np.float32)
    fill = random_array(rng, n, np.float32)
    ref, cpu = _both(add_store, (tw.cdiv(n, 64),), lambda: (base_a[::2], base_b, fill.copy(), 64), monkeypatch)
    np.testing.assert_array_equal(cpu[2], ref[2])


@tw.kernel
def read_then_overwrite(a, b, T: tw.Constant[int]):
    x = tw.load(a, index=(0,), shape=(T,))
    tw.store(a, index=(0,), tile=tw.full((T,), 7.0, tw.float32))
    tw.store(b, index=(0,), tile=x + 1.0)  # must see a's values from before the first store


def test_load_is_not_moved_past_a_write(rng, monkeypatch):
    a0 = random_array(rng, 16, np.float32)
    ref, cpu = _both(read_then_overwrite, (1,), lambda: (a0.copy(), np.zeros(16, np.float32), 16), monkeypatch)
    np.testing.assert_array_equal(cpu[1], a0 + 1.0)
    np.testing.assert_array_equal(cpu[0], ref[0])



@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (8, 16), (13, 40)])
def test_broadcast_chains_into_store_and_reduce(shape, rng, monkeypatch):
    x = random_array(rng, shape, np.float32)
    y0 = random_array(rng, shape, np.float32)
    ref, cpu = _both(softmax, (tw.cdiv(shape[0], 4),), lambda: (x, y0.copy(), 4, 16 if shape[1] <= 16 else 64),
                     monkeypatch)
    np.testing.assert_allclose(cpu[1], ref[1], rtol=2e-6, atol=1e-7)


@tw.kernel
def sum_of_product(a, b, out, T: tw.Constant[int]):
    s = tw.sum(tw.load(a, index=(tw.bid(0),), shape=(T,)) * tw.load(b, index=(tw.bid(0),), shape=(T,)), axis=0)
    tw.store(out, index=(tw.bid(0),), tile=s.reshape((1,)))


@pytest.mark.parametrize("n", [3, 64, 100])
def test_fused_loads_into_a_reduction(n, rng, monkeypatch):
    a, b = random_array(rng, n, np.float64), random_array(rng, n, np.float64)
    blocks = tw.cdiv(n, 32)
    ref, cpu = _both(sum_of_product, (blocks,), lambda: (a, b, np.zeros(blocks), 32), monkeypatch)
    np.testing.assert_allclose(cpu[2], ref[2], rtol=1e-12)
    want = np.add.reduceat(a * b, np.arange(0, n, 32))
    np.testing.assert_allclose(cpu[2], want, rtol=1e-12)


@tw.kernel
def read_compute_then_overwrite(a, b, T: tw.Constant[int]):
    x = tw.load(a, index=(0,), shape=(T,))
    y = x * 2.0 + 1.0  # inlined into the last store, which comes after the write to `a`
    tw.store(a, index=(0,), tile=tw.full((T,), 7.0, tw.float32))
    tw.store(b, index=(0,), tile=y)


def test_a_load_inlined_through_a_chain_is_not_moved_past_a_write(rng, monkeypatch):
    a0 = random_array(rng, 16, np.float32)
    ref, cpu = _both(read_compute_then_overwrite, (1,), lambda: (a0.copy(), np.zeros(16, np.float32), 16),
                     monkeypatch)
    np.testing.assert_array_equal(ref[1], a0 * np.float32(2) + np.float32(1))
    np.testing.assert_array_equal(cpu[1], ref[1])


@tw.kernel
def transpose_in_place(a, T: tw.Constant[int]):
    tw.store(a, index=(0, 0), tile=tw.load(a, index=(0, 0), shape=(T, T), order=(1, 0)) + 0.0)


def test_a_store_never_reads_the_array_it_writes_element_by_element(rng, monkeypatch):
    """Whole-tile semantics: the tile is read before it is stored, even into the same array."""
    a0 = random_array(rng, (8, 8), np.float32)
    ref, cpu = _both(transpose_in_place, (1,), lambda: (a0.copy(), 8), monkeypatch)
    np.testing.assert_array_equal(ref[0], a0.T)
    np.testing.assert_array_equal(cpu[0], ref[0])


@tw.kernel
def masked_scale_rows(x, w, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN))
    keep = tw.arange(TN)[None, :] < x.shape[1] - 1            # arange and a unit reshape, inlined
    wt = tw.load(w, index=(0,), shape=(TN,), padding_mode=tw.PaddingMode.NAN)
    tw.store(y, index=(tw.bid(0), 0), tile=tw.where(keep, t * wt[None, :], -1.0))


@pytest.mark.parametrize("rows, cols", [(1, 1), (5, 7), (9, 16), (4, 30)])
def test_arange_and_unit_reshapes_are_index_remaps(rows, cols, rng, monkeypatch):
    x = random_array(rng, (rows, cols), np.float32)
    w = random_array(rng, 2 * cols, np.float32)[::2]  # strided, and NaN padding past its end
    y0 = random_array(rng, (rows, cols), np.float32)
    ref, cpu = _both(masked_scale_rows, (tw.cdiv(rows, 4),), lambda: (x, w, y0.copy(), 4, 16 if cols <= 16 else 32),
                     monkeypatch)
    want = np.where(np.arange(cols)[None, :] < cols - 1, x * w[None, :], np.float32(-1))
    np.testing.assert_array_equal(ref[2], want)
    np.testing.assert_array_equal(cpu[2], ref[2])
    code = tw.compile(masked_scale_rows, (x, w, y0.copy(), 4, 16), target="cpu").code
    # Only the (1, 16) mask row keeps a buffer (computed once per column, then broadcast); the (4, 16)
    # tiles and the weight row are computed inside the store's loop, or, in blocks where a tile reaches
    # past its array, read from padded copies (64 and 16 elements).
    assert sorted(int(n) for n in re.findall(r"alloca \[(\d+) x", code)) == [16, 16, 64]
