"""cuTile-style batched FFT by three-factor decomposition (N = F0*F1*F2): DFT matrices and twiddles are
precomputed on the host as interleaved (re, im) arrays; the kernel splits them with ct.extract, does
complex matmuls with ct.matmul on batched 3-D tiles, permutes with ct.permute and re-packs with ct.cat."""
import math

import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]


def _split(t, shape, new_shape):
    """Real and imaginary planes of an interleaved (..., 2) tile."""
    lead = shape[:-1] + (1,)
    re = ct.reshape(ct.extract(t, index=(0,) * (len(shape) - 1) + (0,), shape=lead), new_shape)
    im = ct.reshape(ct.extract(t, index=(0,) * (len(shape) - 1) + (1,), shape=lead), new_shape)
    return re, im


def _cmatmul(wr, wi, xr, xi):
    return ct.matmul(wr, xr) - ct.matmul(wi, xi), ct.matmul(wi, xr) + ct.matmul(wr, xi)


@ct.kernel
def fft3(x_packed, y_packed, W0, W1, W2, T0, T1, N: ConstInt, F0: ConstInt, F1: ConstInt, F2: ConstInt,
         BS: ConstInt, D: ConstInt):
    bid = ct.bid(0)
    xri = ct.reshape(ct.load(x_packed, index=(bid, 0, 0), shape=(BS, N * 2 // D, D)), (BS, N, 2))
    xr, xi = _split(xri, (BS, N, 2), (BS, F0, F1 * F2))

    w0r, w0i = _split(ct.load(W0, index=(0, 0, 0), shape=(F0, F0, 2)), (F0, F0, 2), (1, F0, F0))
    w1r, w1i = _split(ct.load(W1, index=(0, 0, 0), shape=(F1, F1, 2)), (F1, F1, 2), (1, F1, F1))
    w2r, w2i = _split(ct.load(W2, index=(0, 0, 0), shape=(F2, F2, 2)), (F2, F2, 2), (1, F2, F2))
    t0r, t0i = _split(ct.load(T0, index=(0, 0, 0), shape=(F0, F1 * F2, 2)), (F0, F1 * F2, 2), (N, 1))
    t1r, t1i = _split(ct.load(T1, index=(0, 0, 0), shape=(F1, F2, 2)), (F1, F2, 2), (F1 * F2, 1))

    # Stage 0: DFT over F0, twiddle, rotate axes (F0, F1, F2) -> (F1, F2, F0).
    yr, yi = _cmatmul(w0r, w0i, xr, xi)
    yr, yi = ct.reshape(yr, (BS, N, 1)), ct.reshape(yi, (BS, N, 1))
    xr, xi = t0r * yr - t0i * yi, t0i * yr + t0r * yi
    xr = ct.reshape(ct.permute(ct.reshape(xr, (BS, F0, F1, F2)), (0, 2, 3, 1)), (BS, F1, F0 * F2))
    xi = ct.reshape(ct.permute(ct.reshape(xi, (BS, F0, F1, F2)), (0, 2, 3, 1)), (BS, F1, F0 * F2))

    # Stage 1: DFT over F1, twiddle, rotate (F1, F2, F0) -> (F2, F0, F1).
    yr, yi = _cmatmul(w1r, w1i, xr, xi)
    yr, yi = ct.reshape(yr, (BS, F1 * F2, F0)), ct.reshape(yi, (BS, F1 * F2, F0))
    xr, xi = t1r * yr - t1i * yi, t1i * yr + t1r * yi
    xr = ct.reshape(ct.permute(ct.reshape(xr, (BS, F1, F2, F0)), (0, 2, 3, 1)), (BS, F2, F0 * F1))
    xi = ct.reshape(ct.permute(ct.reshape(xi, (BS, F1, F2, F0)), (0, 2, 3, 1)), (BS, F2, F0 * F1))

    # Stage 2: DFT over F2; the output index is k0 + F0*k1 + F0*F1*k2 (digit-reversed order).
    yr, yi = _cmatmul(w2r, w2i, xr, xi)
    yr = ct.reshape(ct.permute(ct.reshape(yr, (BS, F2, F0, F1)), (0, 1, 3, 2)), (BS, N, 1))
    yi = ct.reshape(ct.permute(ct.reshape(yi, (BS, F2, F0, F1)), (0, 1, 3, 2)), (BS, N, 1))
    ct.store(y_packed, index=(bid, 0, 0), tile=ct.reshape(ct.cat((yr, yi), axis=-1), (BS, N * 2 // D, D)))


def _twiddles(rows, cols, factor):
    i, j = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    w = np.exp(-2j * math.pi * i * j / factor)
    return np.ascontiguousarray(np.stack([w.real, w.imag], axis=-1).astype(np.float32))


def _fft(x, factors, D, BS):
    F0, F1, F2 = factors
    batch, N = x.shape
    W0, W1, W2 = _twiddles(F0, F0, F0), _twiddles(F1, F1, F1), _twiddles(F2, F2, F2)
    T0, T1 = _twiddles(F0, F1 * F2, N), _twiddles(F1, F2, F1 * F2)
    packed = np.ascontiguousarray(np.stack([x.real, x.imag], -1).astype(np.float32)).reshape(batch, N * 2 // D, D)
    out = np.empty_like(packed)
    ct.launch(None, (batch // BS, 1, 1), fft3, (packed, out, W0, W1, W2, T0, T1, N, F0, F1, F2, BS, D))
    ri = out.reshape(batch, N, 2).astype(np.float64)
    return ri[..., 0] + 1j * ri[..., 1]


@pytest.mark.parametrize("factors,D,batch,BS", [((2, 2, 2), 4, 3, 1), ((4, 4, 4), 8, 4, 2), ((2, 3, 5), 6, 2, 2),
                                                ((8, 4, 2), 64, 2, 1)])
def test_fft(backend, rng, factors, D, batch, BS):
    N = math.prod(factors)
    x = rng.standard_normal((batch, N)) + 1j * rng.standard_normal((batch, N))
    x = x.astype(np.complex64)
    got = _fft(x, factors, D, BS)
    ref = np.fft.fft(x.astype(np.complex128), axis=-1)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * N)
