"""cuTile-style layer norm, forward and backward. The backward accumulates per-group partial dW/dB
under a spin lock (atomic_cas in a while loop to take it, atomic_xchg to release it), the way
cuTile's own layer-norm backward does, then a second kernel reduces the groups."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]
ZERO = ct.PaddingMode.ZERO


@ct.kernel
def ln_forward(X, W, B, Y, Mean, Rstd, eps, TILE_N: ConstInt):
    row = ct.bid(0)
    n_tiles = ct.num_tiles(X, axis=1, shape=(1, TILE_N))
    N = X.shape[1]

    acc = ct.full((1, TILE_N), 0, dtype=ct.float32)
    for j in range(n_tiles):
        acc += ct.load(X, index=(row, j), shape=(1, TILE_N), padding_mode=ZERO)
    mean = ct.sum(acc, axis=1) / N
    ct.store(Mean, index=(row,), tile=mean)

    sq = ct.full((1, TILE_N), 0, dtype=ct.float32)
    for j in range(n_tiles):
        x = ct.load(X, index=(row, j), shape=(1, TILE_N), padding_mode=ZERO)
        inside = (j * TILE_N + ct.arange(TILE_N, dtype=ct.int32)) < N
        d = ct.where(inside, x - mean, 0)
        sq += d ** 2
    rstd = 1 / ct.sqrt(ct.sum(sq, axis=1) / N + eps)
    ct.store(Rstd, index=(row,), tile=rstd)

    for j in range(n_tiles):
        x = ct.load(X, index=(row, j), shape=(1, TILE_N), padding_mode=ZERO)
        w = ct.load(W, index=(j,), shape=(TILE_N,), padding_mode=ZERO)
        b = ct.load(B, index=(j,), shape=(TILE_N,), padding_mode=ZERO)
        y = (x - mean) * rstd * w + b
        ct.store(Y, index=(row, j), tile=y.astype(Y.dtype))


def _bwd_terms(X, W, DY, row, j, mean, rstd, TILE_N, N):
    """Helper (inlined into the kernel): the normalised input and w * dy of one tile, zero past N."""
    x = ct.load(X, index=(row, j), shape=(1, TILE_N), padding_mode=ZERO)
    w = ct.load(W, index=(j,), shape=(TILE_N,), padding_mode=ZERO)
    dy = ct.load(DY, index=(row, j), shape=(1, TILE_N), padding_mode=ZERO)
    inside = j * TILE_N + ct.arange(TILE_N, dtype=ct.int32) < N
    xhat = ct.where(inside, (x - mean) * rstd, 0)
    wdy = ct.where(inside, w * dy, 0)
    return dy, xhat, wdy


@ct.kernel
def ln_backward_dx(DX, DY, DW, DB, X, W, Mean, Rstd, Locks, TILE_N: ConstInt):
    row = ct.bid(0)
    n_tiles = ct.num_tiles(X, axis=1, shape=(1, TILE_N))
    N = X.shape[1]
    groups = DW.shape[0]
    g = row % groups
    mean = ct.load(Mean, index=(row,), shape=(1,))
    rstd = ct.load(Rstd, index=(row,), shape=(1,))

    s1 = ct.full((1, TILE_N), 0, dtype=ct.float32)
    s2 = ct.full((1, TILE_N), 0, dtype=ct.float32)
    for j in range(n_tiles):
        _, xhat, wdy = _bwd_terms(X, W, DY, row, j, mean, rstd, TILE_N, N)
        s1 += xhat * wdy
        s2 += wdy
    c1 = ct.sum(s1, axis=1) / N
    c2 = ct.sum(s2, axis=1) / N

    for j in range(n_tiles):
        dy, xhat, wdy = _bwd_terms(X, W, DY, row, j, mean, rstd, TILE_N, N)
        dx = (wdy - (xhat * c1 + c2)) * rstd
        ct.store(DX, index=(row, j), tile=dx.astype(DX.dtype))
        pdw = (dy * xhat).astype(DW.dtype)
        pdb = dy.astype(DB.dtype)
        # Take group g's lock, read-modify-write its partial sums, release the lock.
        while ct.atomic_cas(Locks, g, 0, 1, memory_order=ct.MemoryOrder.ACQUIRE) == 1:
            pass
        pdw += ct.load(DW, index=(g, j), shape=(1, TILE_N), padding_mode=ZERO)
        pdb += ct.load(DB, index=(g, j), shape=(1, TILE_N), padding_mode=ZERO)
        ct.store(DW, index=(g, j), tile=pdw)
        ct.store(DB, index=(g, j), tile=pdb)
        ct.atomic_xchg(Locks, g, 0, memory_order=ct.MemoryOrder.RELEASE)


@ct.kernel
def ln_backward_dwdb(DW, DB, FINAL_DW, FINAL_DB, TILE_M: ConstInt, TILE_N: ConstInt):
    col = ct.bid(0)
    n_tiles = ct.num_tiles(DW, axis=0, shape=(TILE_M, TILE_N))
    dw = ct.zeros((TILE_M, TILE_N), dtype=ct.float32)
    db = ct.zeros((TILE_M, TILE_N), dtype=ct.float32)
    for i in range(n_tiles):
        dw += ct.load(DW, index=(i, col), shape=(TILE_M, TILE_N), padding_mode=ZERO)
        db += ct.load(DB, index=(i, col), shape=(TILE_M, TILE_N), padding_mode=ZERO)
    ct.store(FINAL_DW, index=(col,), tile=ct.sum(dw, axis=0).astype(FINAL_DW.dtype))
    ct.store(FINAL_DB, index=(col,), tile=ct.sum(db, axis=0).astype(FINAL_DB.dtype))


def _reference(x, w, b, dy, eps):
    x, w, b, dy = (a.astype(np.float64) for a in (x, w, b, dy))
    mean = x.mean(1, keepdims=True)
    rstd = 1 / np.sqrt(((x - mean) ** 2).mean(1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    y = xhat * w + b
    wdy = w * dy
    dx = (wdy - xhat * (xhat * wdy).mean(1, keepdims=True) - wdy.mean(1, keepdims=True)) * rstd
    return y, mean[:, 0], rstd[:, 0], dx, (dy * xhat).sum(0), dy.sum(0)


def _layer_norm(x, w, b, dy, eps, tile_n, groups, zeros=np.zeros, empty=np.empty, empty_like=np.empty_like):
    M, N = x.shape
    y = empty_like(x)
    mean, rstd = empty(M, dtype=np.float32), empty(M, dtype=np.float32)
    ct.launch(None, (M,), ln_forward, (x, w, b, y, mean, rstd, eps, tile_n))
    dx = empty_like(x)
    dw_part, db_part = zeros((groups, N), dtype=np.float32), zeros((groups, N), dtype=np.float32)
    locks = zeros(groups, dtype=np.int32)
    ct.launch(None, (M,), ln_backward_dx, (dx, dy, dw_part, db_part, x, w, mean, rstd, locks, tile_n))
    dw, db = empty(N, dtype=w.dtype), empty(N, dtype=w.dtype)
    ct.launch(None, (ct.cdiv(N, tile_n),), ln_backward_dwdb, (dw_part, db_part, dw, db, 8, tile_n))
    return y, mean, rstd, dx, dw, db, locks


@pytest.mark.parametrize("M,N,tile_n,groups", [(1, 1, 16, 1), (6, 40, 16, 4), (19, 100, 32, 8), (9, 64, 64, 3)])
def test_layer_norm(backend, rng, M, N, tile_n, groups):
    eps = 1e-5
    x = (-2.3 + 0.5 * rng.standard_normal((M, N))).astype(np.float32)
    w, b = rng.random(N).astype(np.float32), rng.random(N).astype(np.float32)
    dy = (0.1 * rng.standard_normal((M, N))).astype(np.float32)
    y, mean, rstd, dx, dw, db, locks = _layer_norm(x, w, b, dy, eps, tile_n, groups)
    ry, rmean, rrstd, rdx, rdw, rdb = _reference(x, w, b, dy, eps)
    np.testing.assert_allclose(mean, rmean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-4)
    np.testing.assert_allclose(y, ry, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dx, rdx, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dw, rdw, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db, rdb, rtol=1e-4, atol=1e-4)
    assert not locks.any(), "every lock must be released"


def test_layer_norm_torch(backend):
    torch = pytest.importorskip("torch")
    g = torch.Generator().manual_seed(0)
    M, N, eps = 13, 70, 1e-5
    x = -2.3 + 0.5 * torch.randn(M, N, generator=g)
    w, b = torch.rand(N, generator=g), torch.rand(N, generator=g)
    dy = 0.1 * torch.randn(M, N, generator=g)
    tdt = {np.float32: torch.float32, np.int32: torch.int32}

    def zeros(shape, dtype):
        return torch.zeros(shape, dtype=tdt[dtype])

    def empty(shape, dtype):
        return torch.empty(shape, dtype=tdt.get(dtype, dtype))

    y, _, _, dx, dw, db, _ = _layer_norm(x, w, b, dy, eps, 32, 4, zeros, empty, torch.empty_like)
    xr = x.clone().double().requires_grad_(True)
    wr, br = w.double().requires_grad_(True), b.double().requires_grad_(True)
    yr = torch.nn.functional.layer_norm(xr, (N,), wr, br, eps)
    yr.backward(dy.double())
    torch.testing.assert_close(y, yr.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(dx, xr.grad.float(), atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(dw, wr.grad.float(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(db, br.grad.float(), atol=1e-4, rtol=1e-4)
