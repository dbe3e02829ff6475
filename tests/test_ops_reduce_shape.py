"""Reductions, scans, shape ops, tile methods and factories against NumPy."""
import ml_dtypes
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw

SHAPE = (4, 6, 5)


def _reduce(fn, x, axis, keepdims):
    if fn == "sum":
        return tw.sum(x, axis=axis, keepdims=keepdims)
    elif fn == "max":
        return tw.max(x, axis=axis, keepdims=keepdims)
    elif fn == "min":
        return tw.min(x, axis=axis, keepdims=keepdims)
    elif fn == "prod":
        return tw.prod(x, axis=axis, keepdims=keepdims)
    elif fn == "argmax":
        return tw.argmax(x, axis=axis, keepdims=keepdims)
    elif fn == "argmin":
        return tw.argmin(x, axis=axis, keepdims=keepdims)
    elif fn == "method_sum":
        return x.sum(axis, keepdims=keepdims)
    return x.max(axis, keepdims=keepdims)


@tw.kernel
def reduce_k(a, out, FN: tw.Constant[str], AXIS: tw.Constant[object], KEEP: tw.Constant[bool],
             SHAPE: tw.Constant[tuple], S0: tw.Constant[int], S1: tw.Constant[int], S2: tw.Constant[int]):
    x = tw.load(a, (0, 0, 0), shape=(S0, S1, S2))
    r = _reduce(FN, x, AXIS, KEEP)
    assert r.shape == SHAPE, f"{FN}(axis={AXIS}, keepdims={KEEP}) has shape {r.shape}, NumPy's is {SHAPE}"
    # a 3-D output array receives any result shape: pad the rank with leading 1s
    tw.store(out, (0, 0, 0), tw.reshape(r, (1,) * (3 - r.ndim) + r.shape))


def run_reduce(a, fn, axis, keepdims):
    ref = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod, "argmax": np.argmax,
           "argmin": np.argmin, "method_sum": np.sum, "method_max": np.max}[fn]
    want_shape = ref(np.zeros(a.shape), axis=axis, keepdims=keepdims).shape
    out_dt = np.int32 if fn.startswith("arg") else a.dtype
    out = np.zeros((1,) * (3 - len(want_shape)) + want_shape, out_dt)
    tw.launch(None, (1,), reduce_k, (a, out, fn, axis, keepdims, want_shape, *a.shape))
    return out.reshape(want_shape)


AXES = [None, 0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("axis", AXES, ids=str)
def test_reductions_float(backend, rng, axis):
    a = random_array(rng, SHAPE, np.float32)
    a64 = a.astype(np.float64)
    for keepdims in (False, True):
        for fn in ("sum", "max", "min", "prod", "method_sum", "method_max"):
            ref = {"sum": np.sum, "max": np.max, "min": np.min, "prod": np.prod}[fn.replace("method_", "")]
            want = ref(a64, axis=axis, keepdims=keepdims).astype(np.float32)
            np.testing.assert_allclose(run_reduce(a, fn, axis, keepdims), want, rtol=2e-6, err_msg=f"{fn} {keepdims}")


@pytest.mark.parametrize("axis", [None, 0, 1, 2], ids=str)
@pytest.mark.parametrize("dt", ["float32", "int32", "float16", "uint8"])
def test_argmax_argmin(backend, rng, axis, dt):
    a = random_array(rng, SHAPE, dt)
    if dt == "uint8":
        a = (a % 4).astype(np.uint8)  # plenty of ties: the first index wins, as in NumPy
    for fn, ref in (("argmax", np.argmax), ("argmin", np.argmin)):
        for keep in (False, True):
            want = ref(a, axis=axis, keepdims=keep)
            np.testing.assert_array_equal(run_reduce(a, fn, axis, keep), want, err_msg=f"{fn} {keep}")


@pytest.mark.parametrize("dt", ["int8", "int32", "int64", "uint16", "float16", "bfloat16", "float64"])
def test_reductions_dtypes(backend, rng, dt):
    npdt = ml_dtypes.bfloat16 if dt == "bfloat16" else np.dtype(dt)
    a = random_array(rng, SHAPE, npdt)
    for fn in ("sum", "max", "min"):
        for axis in (None, 1, (0, 2)):
            got = run_reduce(a, fn, axis, False)
            assert got.dtype == npdt
            if np.dtype(npdt).kind in "iu":
                want = getattr(np, fn)(a, axis=axis)
                want = want.astype(npdt) if fn != "sum" else np.sum(a, axis=axis, dtype=npdt)  # wraps
                np.testing.assert_array_equal(got, want, err_msg=f"{fn} {axis}")
            else:
                want = getattr(np, fn)(a.astype(np.float64), axis=axis).astype(npdt)
                rtol = {"float16": 2e-3, "bfloat16": 1.6e-2}.get(dt, 1e-12)
                np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol,
                                           atol=rtol * 10, err_msg=f"{fn} {axis}")


def test_reductions_bool(backend, rng):
    a = random_array(rng, SHAPE, np.bool_)
    out = run_reduce(a.astype(np.int32), "sum", 1, False)
    np.testing.assert_array_equal(out, a.sum(axis=1))

    @tw.kernel
    def bool_sum(a, out):
        x = tw.load(a, (0, 0, 0), shape=(4, 6, 5))
        s = tw.sum(x, axis=(0, 1))
        assert s.dtype is tw.int32
        tw.store(out, 0, s)
        tw.store(out, 1, tw.max(x).astype(tw.int32) + tw.min(x).astype(tw.int32) * 10)

    out = np.zeros(5, np.int32)
    tw.launch(None, (1,), bool_sum, (a, out))
    np.testing.assert_array_equal(out, [a[:, :, 0].sum(), a.max() + 10 * a.min()] + list(a.sum(axis=(0, 1))[2:]))


@pytest.mark.parametrize("fn", ["max", "min", "sum"])
def test_nan_propagates_in_reductions(backend, rng, fn):
    a = random_array(rng, SHAPE, np.float32)
    a[1, 2, 3] = np.nan
    a[3, 0, :] = np.nan
    for axis in (None, 0, 2, (1, 2)):
        want = getattr(np, fn)(a.astype(np.float64), axis=axis).astype(np.float32)
        np.testing.assert_allclose(run_reduce(a, fn, axis, False), want, rtol=2e-6, equal_nan=True)
    # argmax/argmin: NaN is the extreme value; the first NaN's index wins
    arg = "argmax" if fn == "max" else "argmin"
    for axis in (None, 2):
        np.testing.assert_array_equal(run_reduce(a, arg, axis, False), getattr(np, arg)(a, axis=axis))


@tw.kernel
def scan_k(a, out, FN: tw.Constant[str], AXIS: tw.Constant[int], M: tw.Constant[int], N: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, N))
    r = tw.cumsum(x, axis=AXIS) if FN == "cumsum" else tw.cumprod(x, AXIS)
    tw.store(out, (0, 0), r)


@pytest.mark.parametrize("fn", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dt", ["float32", "int32", "float64", "int16"])
def test_scans(backend, rng, fn, dt):
    a = random_array(rng, (5, 7), dt)
    if fn == "cumprod":
        a = (np.sign(a) * (1 + np.abs(a) % 3)).astype(dt) if dt.startswith("int") else (a / 2).astype(dt)
    for axis in (0, 1, -1):
        out = np.zeros_like(a)
        tw.launch(None, (1,), scan_k, (a, out, fn, axis, 5, 7))
        ref = getattr(np, fn)(a.astype(np.float64 if dt.startswith("float") else np.int64), axis=axis)
        if dt.startswith("float"):
            np.testing.assert_allclose(out, ref.astype(dt), rtol=1e-6, err_msg=f"axis {axis}")
        else:
            np.testing.assert_array_equal(out, ref.astype(dt), err_msg=f"axis {axis}")  # wraps like NumPy


# ---- shape ops ------------------------------------------------------------------------------------

@tw.kernel
def shapes_k(a, b, out, M: tw.Constant[int], N: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, N))
    v = tw.load(b, 0, shape=N)
    outs = (
        tw.reshape(x, (N, M)),
        x.reshape(N * M // 2, 2).reshape((N, M)),
        x.reshape(-1, M),
        tw.permute(x, (1, 0)),
        x.permute(1, 0),
        tw.transpose(x),
        x.T,
        x.transpose(0, 1),
        tw.broadcast_to(v, (M, N)).T,
        (x + v[None, :]).T,
        (tw.expand_dims(v, 0) * x.extract((0, 0), (M, 1))).T,
        x.extract((0, 0), (M, 1)).reshape((1, M)) * tw.ones((N, M), tw.float32),
    )
    for k in range(len(outs)):
        tw.store(out, (k, 0, 0), outs[k][None, :, :])


def test_shape_ops(backend, rng):
    m, n = 4, 6
    a, b = random_array(rng, (m, n), np.float32), random_array(rng, n, np.float32)
    out = np.zeros((12, n, m), np.float32)
    tw.launch(None, (1,), shapes_k, (a, b, out, m, n))
    want = [a.reshape(n, m), a.reshape(n, m), a.reshape(-1, m), a.T, a.T, a.T, a.T, a.T,
            np.broadcast_to(b, (m, n)).T, (a + b).T, (b[None, :] * a[:, :1]).T,
            np.broadcast_to(a[:, 0][None, :], (n, m))]
    for k, w in enumerate(want):
        np.testing.assert_array_equal(out[k], w, err_msg=f"result {k}")


@tw.kernel
def transpose_axes_k(a, out):
    x = tw.load(a, (0, 0, 0), shape=(2, 3, 4))
    y = x.transpose(0, 1)          # (3, 2, 4)
    z = tw.permute(y, (2, 0, 1))   # (4, 3, 2)
    tw.store(out, (0, 0, 0), z)


def test_transpose_axes_3d(backend, rng):
    a = random_array(rng, (2, 3, 4), np.int32)
    out = np.zeros((4, 3, 2), np.int32)
    tw.launch(None, (1,), transpose_axes_k, (a, out))
    np.testing.assert_array_equal(out, a.transpose(1, 0, 2).transpose(2, 0, 1))


@tw.kernel
def cat_extract_k(a, b, out, outx):
    x = tw.load(a, (0, 0), shape=(2, 3))
    y = tw.load(b, (0, 0), shape=(2, 3))
    tw.store(out, (0, 0), tw.cat((x, y), axis=0))               # (4, 3) in a (4, 6) array
    tw.store(out, (0, 1), tw.cat((y, x), 0))
    w = tw.cat((x, y, x), axis=1)                                 # (2, 9)
    tw.store(outx, (0, 0), w.extract((0, 1), (2, 3)))             # the middle third: y
    tw.store(outx, (0, 1), tw.extract(w, (0, 2), shape=(2, 3)))
    tw.store(outx, (1, 0), w.extract((1, 0), (1, 3)).reshape((1, 3)) * tw.full((2, 3), 2, tw.int32))


def test_cat_and_extract(backend, rng):
    a, b = random_array(rng, (2, 3), np.int32), random_array(rng, (2, 3), np.int32)
    out, outx = np.zeros((4, 6), np.int32), np.zeros((4, 6), np.int32)
    tw.launch(None, (1,), cat_extract_k, (a, b, out, outx))
    np.testing.assert_array_equal(out, np.block([[a, b], [b, a]]))
    w = np.concatenate([a, b, a], axis=1)
    np.testing.assert_array_equal(outx[:2, :3], w[:, 3:6])
    np.testing.assert_array_equal(outx[:2, 3:], w[:, 6:])
    np.testing.assert_array_equal(outx[2:, :3], np.broadcast_to(w[1, :3] * 2, (2, 3)))


@tw.kernel
def newaxis_k(a, out, N: tw.Constant[int]):
    v = tw.load(a, 0, shape=N)
    outer = v[:, None] - v[None, :]
    tw.store(out, (0, 0), outer + v[..., None] * 0)


def test_newaxis_indexing(backend, rng):
    a = random_array(rng, 5, np.float64)
    out = np.zeros((5, 5))
    tw.launch(None, (1,), newaxis_k, (a, out, 5))
    np.testing.assert_array_equal(out, a[:, None] - a[None, :])


@tw.kernel
def attrs_k(a, out, M: tw.Constant[int], N: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, N))
    # .shape, .ndim and .dtype are compile-time Python values
    info = x.shape[0] * 1000 + x.shape[1] * 100 + x.ndim * 10 + (1 if x.dtype is tw.int16 else 0)
    first = x.extract((0, 0), (1, 1)).item()
    tw.store(out, 0, info + tw.zeros((1,), tw.int32))
    tw.store(out, 1, first.astype(tw.int32) + len(x) * 0)
    tw.store(out, 2, x.sum().astype(tw.int32))


def test_tile_attributes_and_item(backend, rng):
    a = random_array(rng, (3, 7), np.int16)
    out = np.zeros(3, np.int32)
    tw.launch(None, (1,), attrs_k, (a, out, 3, 7))
    np.testing.assert_array_equal(out, [3721, a[0, 0], a.sum(dtype=np.int16)])


def test_bad_reshape_is_an_error(backend):
    @tw.kernel
    def bad(a):
        tw.store(a, (0, 0), tw.load(a, (0, 0), shape=(2, 3)).reshape((4, 2)))

    with pytest.raises(tw.TileValueError, match="reshape") as e:
        tw.launch(None, (1,), bad, (np.zeros((2, 3)),))
    assert e.value.loc[0] == __file__


# ---- factories ------------------------------------------------------------------------------------

@tw.kernel
def factories_k(out_f, out_i, v, N: tw.Constant[int]):
    tw.store(out_f, (0, 0), tw.full((1, N), 2.5))
    tw.store(out_f, (1, 0), tw.zeros((1, N), tw.float32) + tw.ones((1, N), dtype=tw.float16))
    tw.store(out_f, (2, 0), tw.full((1, N), v, tw.float32))                 # fill with a runtime scalar
    tw.store(out_f, (3, 0), tw.arange(N, dtype=tw.float32)[None, :] / 2)
    a = tw.arange(N)
    assert a.dtype is tw.int32 and tw.zeros((2,)).dtype is tw.float32 and tw.full((2,), 1).dtype is tw.int32
    tw.store(out_i, (0, 0), (a * a)[None, :])
    tw.store(out_i, (1, 0), tw.full((1, N), -3, dtype=tw.int32))


def test_factories(backend):
    n = 7
    out_f, out_i = np.full((4, n), np.nan, np.float32), np.zeros((2, n), np.int32)
    tw.launch(None, (1,), factories_k, (out_f, out_i, 1.25, n))
    np.testing.assert_array_equal(out_f, [np.full(n, 2.5), np.ones(n), np.full(n, 1.25), np.arange(n) / 2])
    np.testing.assert_array_equal(out_i, [np.arange(n) ** 2, np.full(n, -3)])
