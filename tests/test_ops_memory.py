"""Memory ops against NumPy: tiled load/store (partial tiles, strides, order, padding), gather/scatter
and atomics, including a spin lock built from atomic_cas."""
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw

SENTINEL = -7


# ---- tiled load / store -------------------------------------------------------------------------

@tw.kernel
def copy2d(a, b, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    tw.store(b, (i, j), tw.load(a, (i, j), shape=(TM, TN)))


@tw.kernel
def copy1d(a, b, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(b, i, tw.load(a, i, shape=T))  # scalar index for a 1-D array


@tw.kernel
def copy3d(a, b, T0: tw.Constant[int], T1: tw.Constant[int], T2: tw.Constant[int]):
    tw.store(b, (tw.bid(0), tw.bid(1), tw.bid(2)), tw.load(a, (tw.bid(0), tw.bid(1), tw.bid(2)), shape=(T0, T1, T2)))


def launch_copy(a, b, tile):
    grid = tuple(tw.cdiv(n, t) for n, t in zip(a.shape, tile))
    k = {1: copy1d, 2: copy2d, 3: copy3d}[a.ndim]
    tw.launch(None, grid, k, (a, b, *tile))


@pytest.mark.parametrize("shape,tile", [
    ((13, 10), (4, 8)), ((16, 16), (8, 8)), ((1, 1), (2, 4)), ((7, 9), (3, 5)), ((5, 33), (1, 16)),
    ((1,), (4,)), ((50,), (7,)), ((64,), (64,)), ((3, 5, 7), (2, 2, 4)), ((4, 1, 6), (4, 1, 6)),
])
def test_copy_shapes(backend, rng, shape, tile):
    for dt in ("float32", "int16", "bool"):
        a = random_array(rng, shape, dt)
        b = np.zeros_like(a)
        launch_copy(a, b, tile)
        np.testing.assert_array_equal(b, a, err_msg=dt)


@pytest.mark.parametrize("view", ["every_other", "transposed", "slice", "negative_stride", "column"])
def test_strided_views(backend, rng, view):
    big = random_array(rng, (20, 18), np.float64)
    src = {"every_other": big[::2], "transposed": big.T, "slice": big[3:14, 2:15],
           "negative_stride": big[::-1, ::-3], "column": big[:, 5:6]}[view]
    out_big = np.full((2 * src.shape[0], 3 * src.shape[1]), SENTINEL, np.float64)
    dst = out_big[1::2, ::3]  # a strided destination too
    launch_copy(src, dst, (4, 3))
    np.testing.assert_array_equal(dst, src)
    untouched = np.ones(out_big.shape, bool)
    untouched[1::2, ::3] = False
    assert (out_big[untouched] == SENTINEL).all()


def test_strided_1d(backend, rng):
    a = random_array(rng, 41, np.int32)
    b = np.full(60, SENTINEL, np.int32)
    launch_copy(a[::3], b[5:19], (4,))
    np.testing.assert_array_equal(b[5:19], a[::3])
    assert (b[:5] == SENTINEL).all() and (b[19:] == SENTINEL).all()


@pytest.mark.parametrize("m,n,tm,tn", [(12, 10, 4, 5), (11, 9, 4, 4), (3, 7, 8, 2)])
def test_store_drops_out_of_bounds_elements(backend, rng, m, n, tm, tn):
    a = random_array(rng, (m, n), np.float32)
    big = np.full((m + 3, n + 4), SENTINEL, np.float32)
    b = big[1:m + 1, 2:n + 2]  # the tiles overhang b, but the memory past it belongs to big
    launch_copy(a, b, (tm, tn))
    np.testing.assert_array_equal(b, a)
    mask = np.ones(big.shape, bool)
    mask[1:m + 1, 2:n + 2] = False
    assert (big[mask] == SENTINEL).all()


@tw.kernel
def load_order(a, out, TN: tw.Constant[int], TM: tw.Constant[int]):
    j, i = tw.bid(0), tw.bid(1)
    t = tw.load(a, (j, i), shape=(TN, TM), order=(1, 0))
    tw.store(out, (j, i), t)


@tw.kernel
def load_order_f(a, out, TN: tw.Constant[int], TM: tw.Constant[int]):
    j, i = tw.bid(0), tw.bid(1)
    tw.store(out, (j, i), tw.load(a, (j, i), shape=(TN, TM), order="F"))


@tw.kernel
def store_order(a, out, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    t = tw.load(a, (i, j), shape=(TM, TN))            # t[x, y] = a[i*TM + x, j*TN + y]
    tw.store(out, (j, i), t.transpose(), order=(1, 0))  # out[i*TM + x, j*TN + y] = t[x, y]


@pytest.mark.parametrize("kernel", [load_order, load_order_f])
def test_load_with_order_transposes(backend, rng, kernel):
    """order=(1, 0): t[y, x] = array[i*tm + x, j*tn + y] for index (j, i) and shape (tn, tm)."""
    m, n, tm, tn = 10, 7, 4, 3
    a = random_array(rng, (m, n), np.float32)
    out = np.zeros((n, m), np.float32)
    tw.launch(None, (tw.cdiv(n, tn), tw.cdiv(m, tm)), kernel, (a, out, tn, tm))
    np.testing.assert_array_equal(out, a.T)


def test_store_with_order(backend, rng):
    a = random_array(rng, (9, 10), np.int32)
    out = np.zeros_like(a)
    tw.launch(None, (tw.cdiv(9, 4), tw.cdiv(10, 3)), store_order, (a, out, 4, 3))
    np.testing.assert_array_equal(out, a)


@tw.kernel
def order_3d(a, out, T0: tw.Constant[int], T1: tw.Constant[int], T2: tw.Constant[int]):
    idx = (tw.bid(0), tw.bid(1), tw.bid(2))
    t = tw.load(a, idx, shape=(T0, T1, T2), order=(2, 0, 1))   # a tile of a.transpose(2, 0, 1)
    tw.store(out, idx, t)
    tw.store(a, idx, t * 2, order=(2, 0, 1))                     # and back through the same view


def test_order_3d_partial_tiles(backend, rng):
    a = random_array(rng, (5, 6, 7), np.int64)
    orig = a.copy()
    out = np.zeros((7, 5, 6), np.int64)
    tw.launch(None, (tw.cdiv(7, 3), tw.cdiv(5, 2), tw.cdiv(6, 4)), order_3d, (a, out, 3, 2, 4))
    np.testing.assert_array_equal(out, orig.transpose(2, 0, 1))
    np.testing.assert_array_equal(a, orig * 2)


@tw.kernel
def pad_k(a, out, MODE: tw.Constant[object], T: tw.Constant[int]):
    tw.store(out, 0, tw.load(a, 0, shape=T, padding_mode=MODE))


PAD = {tw.PaddingMode.UNDETERMINED: 0.0, tw.PaddingMode.ZERO: 0.0, tw.PaddingMode.NEG_ZERO: -0.0,
       tw.PaddingMode.NAN: np.nan, tw.PaddingMode.POS_INF: np.inf, tw.PaddingMode.NEG_INF: -np.inf}


@pytest.mark.parametrize("mode", list(tw.PaddingMode), ids=lambda m: m.name)
@pytest.mark.parametrize("dt", ["float32", "float16"])
def test_padding_modes(backend, rng, mode, dt, monkeypatch):
    monkeypatch.delenv("TILEWISE_POISON", raising=False)
    a = random_array(rng, 5, dt)
    out = np.zeros(8, dt)
    tw.launch(None, (1,), pad_k, (a, out, mode, 8))
    np.testing.assert_array_equal(out[:5], a)
    want = np.full(3, PAD[mode], dt)
    np.testing.assert_array_equal(out[5:], want)
    assert (np.signbit(out[5:]) == np.signbit(want)).all()  # -0.0 really is negative zero


def test_undetermined_padding_poisoned(backend, rng, monkeypatch):
    monkeypatch.setenv("TILEWISE_POISON", "1")
    a = random_array(rng, 5, np.float32)
    out = np.zeros(8, np.float32)
    tw.launch(None, (1,), pad_k, (a, out, tw.PaddingMode.UNDETERMINED, 8))
    np.testing.assert_array_equal(out[:5], a)
    assert np.isnan(out[5:]).all()


def test_int_padding(backend, rng):
    a = random_array(rng, 3, np.int32)
    out = np.full(4, SENTINEL, np.int32)
    tw.launch(None, (1,), pad_k, (a, out, tw.PaddingMode.ZERO, 4))
    np.testing.assert_array_equal(out, list(a) + [0])
    with pytest.raises(tw.TileTypeError, match="float") as e:
        tw.launch(None, (1,), pad_k, (a, out, tw.PaddingMode.NAN, 4))
    assert e.value.loc[0] == __file__


@tw.kernel
def store_scalars(out, v, B: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(out, (i, 0), 5)                 # a Python number
    tw.store(out, (i, 1), v * i)             # a runtime scalar
    t = tw.load(out, (i, 0), shape=(1, 2))
    tw.store(out, (i, 2), tw.sum(t).item() + B)


def test_store_scalar(backend):
    out = np.zeros((4, 3), np.float32)
    tw.launch(None, (4,), store_scalars, (out, 1.5, 10))
    want = np.stack([np.full(4, 5.0), 1.5 * np.arange(4), 15 + 1.5 * np.arange(4)], axis=1)
    np.testing.assert_array_equal(out, want)


def test_load_rank_mismatch_is_an_error(backend):
    @tw.kernel
    def bad(a, b):
        tw.store(b, (0, 0), tw.load(a, (0, 0), shape=(4,)))

    with pytest.raises(tw.TileValueError, match="rank") as e:
        tw.launch(None, (1,), bad, (np.zeros((4, 4)), np.zeros((4, 4))))
    assert e.value.loc[0] == __file__


# ---- gather / scatter ---------------------------------------------------------------------------

@tw.kernel
def gather_2d(a, rows, cols, out, R: tw.Constant[int], C: tw.Constant[int]):
    r = tw.load(rows, 0, shape=R)
    c = tw.load(cols, 0, shape=C)
    g = tw.gather(a, (r[:, None], c[None, :]), padding_value=-1.0)   # broadcast index tiles
    tw.store(out, (0, 0), g)


def test_gather_broadcast_and_out_of_range(backend, rng):
    a = random_array(rng, (12, 9), np.float32)[::2, ::-1]   # a strided, reversed view
    rows = np.array([0, 5, 2, -1, 6, 3, 5], np.int32)
    cols = np.array([8, 0, 9, 4, -3], np.int64)
    out = np.zeros((7, 5), np.float32)
    tw.launch(None, (1,), gather_2d, (a, rows, cols, out, 7, 5))
    ok = (rows[:, None] >= 0) & (rows[:, None] < 6) & (cols[None, :] >= 0) & (cols[None, :] < 9)
    want = np.where(ok, a[np.clip(rows, 0, 5)[:, None], np.clip(cols, 0, 8)[None, :]], -1.0)
    np.testing.assert_array_equal(out, want)


@tw.kernel
def gather_masked(a, idx, out, T: tw.Constant[int]):
    i = tw.bid(0)
    ix = tw.load(idx, i, shape=T)
    g = tw.gather(a, ix, mask=ix % 3 != 0)
    tw.store(out, i, g)


def test_gather_mask(backend, rng):
    a = random_array(rng, 30, np.int32)
    idx = rng.integers(-5, 35, 23).astype(np.int32)
    out = np.full(23, SENTINEL, np.int32)
    tw.launch(None, (tw.cdiv(23, 8),), gather_masked, (a, idx, out, 8))
    ok = (idx % 3 != 0) & (idx >= 0) & (idx < 30)
    np.testing.assert_array_equal(out, np.where(ok, a[np.clip(idx, 0, 29)], 0))


@tw.kernel
def scatter_k(out, idx, vals, T: tw.Constant[int]):
    i = tw.bid(0)
    ix = tw.load(idx, i, shape=T)
    v = tw.load(vals, i, shape=T)
    tw.scatter(out, ix, v, mask=v > 0)
    tw.scatter(out, (ix + 100,), 9)   # scalar value broadcast; every index out of range: dropped


def test_scatter_mask_and_out_of_range(backend, rng):
    n = 40
    perm = rng.permutation(60)[:n].astype(np.int32) - 5   # unique, some out of [0, 50)
    vals = random_array(rng, n, np.float32)
    out = np.full(50, SENTINEL, np.float32)
    tw.launch(None, (tw.cdiv(n, 16),), scatter_k, (out, perm, vals, 16))
    want = np.full(50, SENTINEL, np.float32)
    ok = (vals > 0) & (perm >= 0) & (perm < 50)
    want[perm[ok]] = vals[ok]
    np.testing.assert_array_equal(out, want)


@tw.kernel
def scatter_2d(out, T: tw.Constant[int]):
    r = tw.arange(T)
    tw.scatter(out, (r[:, None], r[None, :]), (r[:, None] * 10 + r[None, :]).astype(tw.float64))


def test_scatter_2d_broadcast(backend):
    big = np.zeros((5, 10))
    out = big[::2, 1::2]  # (3, 5), strided
    tw.launch(None, (1,), scatter_2d, (out, 4))
    r = np.arange(4)
    want = (r[:, None] * 10 + r[None, :])[:3, :4]
    np.testing.assert_array_equal(out[:, :4], want)
    assert (out[:, 4] == 0).all()
    assert big[1::2].sum() == 0 and big[:, ::2].sum() == 0


# ---- atomics ------------------------------------------------------------------------------------

@tw.kernel
def histogram(data, hist, old, T: tw.Constant[int]):
    i = tw.bid(0)
    d = tw.load(data, i, shape=T, padding_mode=tw.PaddingMode.ZERO)
    valid = i * T + tw.arange(T) < data.shape[0]
    o = tw.atomic_add(hist, d, 1, mask=valid)
    tw.store(old, i, o)


@pytest.mark.parametrize("dt", ["int32", "int64", "uint32", "float32"])
def test_atomic_add_histogram_returns_old_values(backend, rng, dt):
    n, bins = 203, 7
    data = rng.integers(0, bins, n).astype(np.int32)
    hist = np.zeros(bins, dt)
    old = np.full(n, SENTINEL, dt) if dt != "uint32" else np.zeros(n, dt)
    tw.launch(None, (tw.cdiv(n, 32),), histogram, (data, hist, old, 32))
    np.testing.assert_array_equal(hist, np.bincount(data, minlength=bins))
    for b in range(bins):  # each bin saw the counts 0..k-1, in some order
        np.testing.assert_array_equal(np.sort(old[data == b]), np.arange((data == b).sum()))


@tw.kernel
def atomic_ops(arr, idx, vals, old, KIND: tw.Constant[str], T: tw.Constant[int]):
    i = tw.bid(0)
    ix = tw.load(idx, i, shape=T)
    v = tw.load(vals, i, shape=T)
    if KIND == "max":
        o = tw.atomic_max(arr, ix, v)
    elif KIND == "min":
        o = tw.atomic_min(arr, ix, v)
    elif KIND == "and":
        o = tw.atomic_and(arr, ix, v)
    elif KIND == "or":
        o = tw.atomic_or(arr, ix, v)
    elif KIND == "xor":
        o = tw.atomic_xor(arr, ix, v)
    else:
        o = tw.atomic_add(arr, ix, v)
    tw.store(old, i, o)


ATOMIC_REF = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and, "or": np.bitwise_or,
              "xor": np.bitwise_xor}


@pytest.mark.parametrize("kind,dt", [("max", "int32"), ("min", "int64"), ("max", "float32"), ("min", "float64"),
                                     ("and", "uint32"), ("or", "int32"), ("xor", "int64"), ("add", "float64"),
                                     ("max", "uint8")])
def test_atomic_ops_with_duplicates(backend, rng, kind, dt):
    n, size, t = 64, 5, 16
    idx = rng.integers(0, size, n).astype(np.int32)
    vals = random_array(rng, n, dt)
    init = random_array(rng, size, dt)
    arr = init.copy()
    old = np.zeros(n, dt)
    tw.launch(None, (n // t,), atomic_ops, (arr, idx, vals, old, kind, t))
    want = init.copy()
    ATOMIC_REF[kind].at(want, idx, vals)
    if dt.startswith("float"):
        np.testing.assert_allclose(arr, want, rtol=1e-12 if dt == "float64" else 1e-6)
    else:
        np.testing.assert_array_equal(arr, want)
    # the old values form a valid serialisation: each is the initial value combined with some others
    for p in range(size):
        seen = old[idx == p]
        if kind in ("max", "min"):
            assert ((seen <= want[p]) if kind == "max" else (seen >= want[p])).all()
            assert init[p] in seen or not len(seen)
        elif kind == "xor" and len(seen):
            assert init[p] in seen


@tw.kernel
def xchg_cas(arr, slots, winners, old_x):
    b = tw.bid(0)
    # every block races for slot 0: exactly one compare-and-swap sees the initial 0
    o = tw.atomic_cas(slots, 0, 0, b + 1)
    tw.store(winners, b, tw.where(o == 0, 1, 0))
    # exchange returns the previous occupant; the chain of old values visits every block once
    ox = tw.atomic_xchg(arr, (0,), b + 1)
    tw.store(old_x, b, ox)


def test_atomic_xchg_and_cas(backend):
    nb = 9
    arr, slots = np.zeros(1, np.int32), np.zeros(1, np.int32)
    winners, old_x = np.zeros(nb, np.int32), np.full(nb, SENTINEL, np.int32)
    tw.launch(None, (nb,), xchg_cas, (arr, slots, winners, old_x))
    assert winners.sum() == 1
    assert slots[0] == np.argmax(winners) + 1
    assert sorted(old_x.tolist() + [int(arr[0])]) == list(range(nb + 1))


@tw.kernel
def atomic_2d(arr, T: tw.Constant[int]):
    r = tw.arange(T)
    tw.atomic_add(arr, (r[:, None] % 2, r[None, :] % 3), 1)


def test_atomic_2d_broadcast_indices(backend):
    arr = np.zeros((2, 3), np.int32)
    tw.launch(None, (5,), atomic_2d, (arr, 6))
    np.testing.assert_array_equal(arr, np.full((2, 3), 5 * 3 * 2))


@tw.kernel
def locked_increment(lock, counter, REPEAT: tw.Constant[int]):
    for _ in range(REPEAT):
        while tw.atomic_cas(lock, 0, 0, 1) == 1:
            pass
        c = tw.load(counter, 0, shape=1)      # not atomic: only safe because of the lock
        tw.store(counter, 0, c + 1)
        tw.atomic_xchg(lock, 0, 0)


def test_spin_lock(backend):
    lock, counter = np.zeros(1, np.int32), np.zeros(1, np.int32)
    tw.launch(None, (37,), locked_increment, (lock, counter, 3))
    assert counter[0] == 37 * 3
    assert lock[0] == 0


def test_atomic_bitwise_on_float_is_an_error(backend):
    @tw.kernel
    def bad(a):
        tw.atomic_or(a, 0, 1)

    with pytest.raises(tw.TileTypeError, match="integer") as e:
        tw.launch(None, (1,), bad, (np.zeros(2, np.float32),))
    assert e.value.loc[0] == __file__
