"""cuTile-style RMS norm: a gather/scatter row kernel, a static persistent multi-row kernel, and the
backward kernels for dX (row-parallel) and dW (column-parallel)."""
import os

import numpy as np
import pytest

import tilewise as ct


@ct.kernel
def rms_norm_rows(x, w, out, Rstd, N: ct.Constant[int], eps: ct.Constant[float], TILE: ct.Constant[int]):
    row = ct.bid(0)
    sq = ct.full((TILE,), 0.0, dtype=ct.float32)
    n_tiles = ct.cdiv(N, TILE)
    lanes = ct.arange(TILE, dtype=ct.int32)
    for j in range(0, n_tiles):
        xj = ct.astype(ct.gather(x, (row, j * TILE + lanes), latency=1), ct.float32)
        sq += xj * xj
    r = ct.rsqrt(ct.sum(sq, axis=0, keepdims=False) / N + eps)
    ct.scatter(Rstd, row, r)
    for j in range(0, n_tiles):
        cols = j * TILE + lanes
        wj = ct.astype(ct.gather(w, cols, latency=1), ct.float32)
        xj = ct.astype(ct.gather(x, (row, cols)), ct.float32)
        ct.scatter(out, (row, cols), ct.astype(xj * r * wj, x.dtype), latency=1)


@ct.kernel
def rms_norm_persistent(X, Y, W, TM: ct.Constant[int], TN: ct.Constant[int], eps: ct.Constant[float],
                        PAD: ct.Constant[bool]):
    # With PAD False the loads past N rely on the default (UNDETERMINED) padding reading as zero, as
    # cuTile's own persistent RMS norm does.
    pad = ct.PaddingMode.ZERO if PAD else ct.PaddingMode.UNDETERMINED
    M = X.shape[0]
    N = X.shape[1]
    w = ct.astype(ct.load(W, index=(0,), shape=(TN,), padding_mode=pad), ct.float32)
    for t in range(ct.bid(0), (M + TM - 1) // TM, ct.num_blocks(0)):
        x = ct.astype(ct.load(X, index=(t, 0), shape=(TM, TN), latency=10, padding_mode=pad), ct.float32)
        ms = ct.truediv(ct.sum(ct.mul(x, x), axis=1, keepdims=True), ct.full((TM, 1), N * 1.0, dtype=ct.float32))
        inv = ct.rsqrt(ct.add(ms, ct.full((TM, 1), eps, dtype=ct.float32)))
        y = ct.mul(ct.mul(x, inv), ct.reshape(w, (1, TN)))
        ct.store(Y, index=(t, 0), tile=ct.astype(y, X.dtype), allow_tma=False, latency=3)


@ct.kernel
def rms_backward_dx(dx, dy, x, weight, Rstd, TILE: ct.Constant[int]):
    row = ct.bid(0)
    M, N = x.shape
    xr = ct.load(x, index=(row, 0), shape=(1, TILE), padding_mode=ct.PaddingMode.ZERO)
    g = ct.load(dy, index=(row, 0), shape=(1, TILE), padding_mode=ct.PaddingMode.ZERO)
    r = ct.reshape(ct.load(Rstd, index=(row,), shape=(1,), padding_mode=ct.PaddingMode.ZERO), (1, 1))
    w = ct.reshape(ct.load(weight, index=(0,), shape=(TILE,), padding_mode=ct.PaddingMode.ZERO), (1, TILE))
    dot = ct.sum(xr * w * g, axis=1, keepdims=True)
    n = ct.full((1, 1), N * 1.0, dtype=ct.float32)
    grad = g * w * r - xr * (r * r * r) / n * dot
    ct.store(dx, index=(row, 0), tile=ct.astype(grad, dx.dtype))


@ct.kernel
def rms_backward_dw(dw, dy, x, Rstd, TILE: ct.Constant[int]):
    col = ct.bid(0)
    xc = ct.astype(ct.load(x, index=(0, col), shape=(TILE, 1), padding_mode=ct.PaddingMode.ZERO), ct.float32)
    gc = ct.astype(ct.load(dy, index=(0, col), shape=(TILE, 1), padding_mode=ct.PaddingMode.ZERO), ct.float32)
    r = ct.reshape(ct.load(Rstd, index=(0,), shape=(TILE,), padding_mode=ct.PaddingMode.ZERO), (TILE, 1))
    total = ct.reshape(ct.sum(gc * xc * r, axis=0, keepdims=False), (1,))
    ct.store(dw, index=(col,), tile=ct.astype(total, dw.dtype))


def _ref(x, w, eps):
    x64 = x.astype(np.float64)
    rstd = 1 / np.sqrt((x64 * x64).mean(1) + eps)
    return x64 * rstd[:, None] * w.astype(np.float64), rstd


def _next_pow2(n):
    return 1 << max(0, (n - 1).bit_length())


@pytest.mark.parametrize("M,N,tile", [(1, 1, 8), (5, 100, 32), (12, 64, 64), (3, 257, 128)])
def test_rms_norm_rows(backend, rng, M, N, tile):
    x = rng.standard_normal((M, N)).astype(np.float32)
    w = rng.standard_normal(N).astype(np.float32)
    y, rstd = np.empty_like(x), np.empty(M, np.float32)
    ct.launch(None, (M,), rms_norm_rows, (x, w, y, rstd, N, 1e-6, tile))
    ry, rr = _ref(x, w, 1e-6)
    np.testing.assert_allclose(rstd, rr, rtol=1e-5)
    np.testing.assert_allclose(y, ry, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("M,N,tm,grid", [(37, 48, 4, 3), (8, 100, 16, 2), (1, 5, 2, 4)])
@pytest.mark.parametrize("pad", [True, False])
def test_rms_norm_persistent(backend, rng, M, N, tm, grid, pad):
    if not pad and os.environ.get("TILEWISE_POISON") == "1":
        pytest.skip("relies on UNDETERMINED padding reading as zero, which TILEWISE_POISON=1 turns into NaN")
    x = rng.standard_normal((M, N)).astype(np.float16)
    w = rng.standard_normal(N).astype(np.float16)
    y = np.empty_like(x)
    ct.launch(None, (grid,), rms_norm_persistent, (x, y, w, tm, _next_pow2(N), 1e-5, pad))
    ry, _ = _ref(x, w, 1e-5)
    np.testing.assert_allclose(y.astype(np.float64), ry, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("M,N", [(1, 1), (6, 33), (20, 64)])
def test_rms_norm_backward(backend, rng, M, N):
    eps = 1e-6
    x = rng.standard_normal((M, N)).astype(np.float32)
    w = rng.standard_normal(N).astype(np.float32)
    dy = rng.standard_normal((M, N)).astype(np.float32)
    _, rstd64 = _ref(x, w, eps)
    rstd = rstd64.astype(np.float32)
    dx, dw = np.empty_like(x), np.empty_like(w)
    ct.launch(None, (M,), rms_backward_dx, (dx, dy, x, w, rstd, _next_pow2(N)))
    ct.launch(None, (N,), rms_backward_dw, (dw, dy, x, rstd, _next_pow2(M)))
    x64, w64, dy64, r = x.astype(np.float64), w.astype(np.float64), dy.astype(np.float64), rstd64[:, None]
    rdx = dy64 * w64 * r - x64 * r ** 3 / N * (dy64 * w64 * x64).sum(1, keepdims=True)
    np.testing.assert_allclose(dx, rdx, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dw, (dy64 * x64 * r).sum(0), rtol=1e-4, atol=1e-4)


def test_rms_norm_torch(backend):
    torch = pytest.importorskip("torch")
    x = torch.randn(9, 40, dtype=torch.float32)
    w = torch.randn(40, dtype=torch.float32)
    y, rstd = torch.empty_like(x), torch.empty(9, dtype=torch.float32)
    ct.launch(None, (9,), rms_norm_rows, (x, w, y, rstd, 40, 1e-6, 16))
    ref = x.double() * torch.rsqrt((x.double() ** 2).mean(1, keepdim=True) + 1e-6) * w.double()
    torch.testing.assert_close(y, ref.float(), rtol=1e-5, atol=1e-5)
