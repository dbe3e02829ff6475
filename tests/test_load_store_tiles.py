"""Loads and stores of whole tiles: every block's tile in bounds, some partial, strided and reversed views,
arrays the kernel also writes (a load must not see a later store), and blocks that skip their store.
The reference backend takes a no-copy path for in-bounds tiles; these pin its results to NumPy's."""
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw


@tw.kernel
def copy_tiles(src, dst, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(src, index=(tw.bid(0), tw.bid(1)), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    tw.store(dst, index=(tw.bid(0), tw.bid(1)), tile=t)


@tw.kernel
def transpose_tiles(src, dst, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(src, index=(tw.bid(0), tw.bid(1)), shape=(TM, TN))
    tw.store(dst, index=(tw.bid(1), tw.bid(0)), tile=tw.transpose(t))


def _padded(src, tm, tn, fill):
    m, n = -(-src.shape[0] // tm) * tm, -(-src.shape[1] // tn) * tn
    out = np.full((m, n), fill, src.dtype)
    out[:src.shape[0], :src.shape[1]] = src
    return out


@pytest.mark.parametrize("shape", [(64, 48), (70, 50), (16, 5), (1, 1)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_load_pads_only_partial_tiles(backend, rng, shape, dtype):
    src = random_array(rng, shape, getattr(tw, dtype).np)
    tm, tn = 16, 8
    ref = _padded(src, tm, tn, -np.inf)
    dst = np.zeros_like(ref)
    tw.launch(None, (ref.shape[0] // tm, ref.shape[1] // tn), copy_tiles, (src, dst, tm, tn))
    np.testing.assert_array_equal(dst.astype(np.float64), ref.astype(np.float64))


@pytest.mark.parametrize("view", ["strided", "reversed", "fortran"])
def test_strided_views_load_and_store(backend, rng, view):
    base = random_array(rng, (90, 100), np.float32)
    src = {"strided": base[::2, 1::3], "reversed": base[::-1, ::-1], "fortran": np.asfortranarray(base)}[view]
    dst_base = np.zeros((120, 200), np.float32)
    dst = dst_base[::-1, ::2][:src.shape[1], :src.shape[0]]  # a reversed, strided destination
    tm, tn = 8, 16
    grid = (tw.cdiv(src.shape[0], tm), tw.cdiv(src.shape[1], tn))
    tw.launch(None, grid, transpose_tiles, (src, dst, tm, tn))
    np.testing.assert_array_equal(dst, src.T)
    untouched = np.ones(dst_base.shape, bool)
    untouched[::-1, ::2][:src.shape[1], :src.shape[0]] = False
    assert not dst_base[untouched].any()


@tw.kernel
def double_in_place(a, old, TILE: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(TILE,))
    tw.store(a, index=(tw.bid(0),), tile=x * 2)
    tw.store(old, index=(tw.bid(0),), tile=x)


@pytest.mark.parametrize("n", [256, 1000])
def test_a_loaded_tile_does_not_change_when_its_array_is_stored_to(backend, rng, n):
    a = random_array(rng, n, np.float32)
    orig = a.copy()
    old = np.zeros_like(a)
    tw.launch(None, (tw.cdiv(n, 64),), double_in_place, (a, old, 64))
    np.testing.assert_array_equal(old, orig)
    np.testing.assert_array_equal(a, orig * 2)


@tw.kernel
def read_write_read(src, dst, out, TILE: tw.Constant[int]):
    x = tw.load(src, index=(tw.bid(0),), shape=(TILE,))
    tw.store(dst, index=(tw.bid(0),), tile=x + 1)
    y = tw.load(src, index=(tw.bid(0),), shape=(TILE,))
    tw.store(out, index=(tw.bid(0),), tile=y - x)


def test_aliasing_through_a_second_view_of_the_same_memory(backend, rng):
    buf = np.round(random_array(rng, 512, np.float32))
    out = np.zeros_like(buf)
    tw.launch(None, (512 // 128,), read_write_read, (buf[:], buf, out, 128))
    np.testing.assert_array_equal(out, np.ones_like(out))


@tw.kernel
def broadcast_row(w, dst, TN: tw.Constant[int]):
    row = tw.load(w, index=(0,), shape=(TN,))  # every block loads the same tile
    tw.store(dst, index=(tw.bid(0), 0), tile=row[None, :] * (tw.bid(0) + 1))


def test_every_block_loading_the_same_tile(backend, rng):
    w = random_array(rng, 32, np.float32)
    dst = np.zeros((7, 32), np.float32)
    tw.launch(None, (7,), broadcast_row, (w, dst, 32))
    np.testing.assert_allclose(dst, np.arange(1, 8, dtype=np.float32)[:, None] * w, rtol=0)


@tw.kernel
def store_even_blocks(src, dst, TILE: tw.Constant[int]):
    x = tw.load(src, index=(tw.bid(0),), shape=(TILE,))
    if tw.bid(0) % 2 == 0:
        tw.store(dst, index=(tw.bid(0),), tile=x)


@pytest.mark.parametrize("n", [512, 500])
def test_blocks_that_skip_their_store_leave_memory_alone(backend, rng, n):
    src = random_array(rng, n, np.int32)
    dst = np.full(n, -7, np.int32)
    tw.launch(None, (tw.cdiv(n, 32),), store_even_blocks, (src, dst, 32))
    even = (np.arange(n) // 32) % 2 == 0
    np.testing.assert_array_equal(dst[even], src[even])
    assert (dst[~even] == -7).all()
