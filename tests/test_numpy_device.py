"""tilewise.numpy on a device: the emulated GPU (the generated CUDA C++ built for the host), which is how
CI tests the device path. Values stay in device memory: the results are device arrays, and nothing but
the visible fallbacks goes through the host. Each distinct kernel costs a host C++ build here, so the
cases are few and cover each kind of kernel once."""
import warnings

import numpy as np
import pytest
from conftest import random_array

import tilewise.numpy as tnp
from tilewise import backends
from tilewise.numpy import storage

pytestmark = pytest.mark.skipif("cuda-emulated" not in backends.available(), reason="needs a host C++ compiler")
DEV = "cuda-emulated:0"


def on_device(x):
    return isinstance(x, tnp.ndarray) and x.device == DEV and storage.on_device(x._value())


def same(got, want, rtol=1e-6):
    assert on_device(got), got.device
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=rtol)


@pytest.fixture
def no_fallbacks():
    with warnings.catch_warnings():
        warnings.simplefilter("error", tnp.FallbackWarning)
        yield


def test_arrays_live_on_the_device(rng, no_fallbacks):
    x = random_array(rng, (37, 50), np.float32)
    t = tnp.asarray(x, device=DEV)
    assert on_device(t) and t.device == DEV
    assert "device='cuda-emulated:0'" in repr(t)
    same(t, x)
    back = t.to_device("cpu")
    assert back.device == "cpu" and isinstance(back._value(), np.ndarray)
    assert tnp.asarray(t) is t and tnp.asarray(t, device="cpu").device == "cpu"


def test_fused_chains_and_reductions_run_on_the_device(rng, no_fallbacks):
    x, y = random_array(rng, (37, 50), np.float32), random_array(rng, (50,), np.float32)
    tx, ty = tnp.asarray(x, device=DEV), tnp.asarray(y, device=DEV)
    same(tx * ty + tnp.sin(tx) - 2.0, x * y + np.sin(x) - np.float32(2.0), rtol=1e-5)
    same(tnp.sum(tx * tx, axis=0), (x.astype(np.float64) ** 2).sum(axis=0).astype(np.float32), rtol=1e-5)
    same(tnp.max(tx, axis=1, keepdims=True), x.max(axis=1, keepdims=True))
    s = tnp.sum(tx)  # a full reduction: partial sums reduced by a second kernel on the device
    assert on_device(s) and float(s) == pytest.approx(float(x.astype(np.float64).sum()), rel=1e-5)
    same(tx.mean(axis=0), x.mean(axis=0), rtol=1e-5)
    same((tx > 0).any(axis=1), (x > 0).any(axis=1))


def test_long_rows_are_reduced_in_chunks_on_the_device(rng, no_fallbacks, monkeypatch):
    from tilewise.numpy import kernels
    monkeypatch.setattr(kernels, "CHUNK", 64)
    x = random_array(rng, (1000,), np.float64)
    s = tnp.sum(tnp.asarray(x, device=DEV) * 2)
    assert on_device(s) and float(s) == pytest.approx(2 * x.sum(), rel=1e-12)


def test_scans_arg_reductions_joins_and_views(rng, no_fallbacks):
    x = random_array(rng, (6, 41), np.float64)
    t = tnp.asarray(x, device=DEV)
    same(tnp.cumsum(t, axis=1), np.cumsum(x, axis=1), rtol=1e-12)
    same(tnp.argmax(t, axis=0), np.argmax(x, axis=0))
    same(tnp.concatenate([t, t[:2]]), np.concatenate([x, x[:2]]))
    same(tnp.stack([t[0], t[1]], axis=1), np.stack([x[0], x[1]], axis=1))
    same(t.T[3:, ::2], x.T[3:, ::2])
    same(t.reshape(-1)[5:9], x.reshape(-1)[5:9])
    same(tnp.roll(t, 3, axis=1), np.roll(x, 3, axis=1))


def test_writes_on_the_device(rng, no_fallbacks):
    z = tnp.zeros((4, 5), device=DEV)
    assert on_device(z)
    z[1:3, 2:] = tnp.ones((2, 3), device=DEV) * 7
    z[0, 0] = -1
    z += 1
    want = np.zeros((4, 5))
    want[1:3, 2:] = 7
    want[0, 0] = -1
    want += 1
    same(z, want)
    same(tnp.full((3,), 2.5, device=DEV), np.full(3, 2.5))
    same(tnp.zeros_like(z), np.zeros((4, 5)))


def test_fallbacks_on_the_device_come_back_to_it(rng):
    x = random_array(rng, (20,), np.float32)
    t = tnp.asarray(x, device=DEV)
    with pytest.warns(tnp.FallbackWarning, match="sort"):
        r = tnp.sort(t)
    same(r, np.sort(x))
    with pytest.warns(tnp.FallbackWarning):
        g = t[np.array([3, 1, 4])]
    same(g, x[[3, 1, 4]])


def test_mixing_devices_is_an_error(rng):
    with pytest.raises(ValueError, match="different devices"):
        tnp.asarray(np.ones(3), device=DEV) + tnp.asarray(np.ones(3))


def test_choosing_the_default_device(monkeypatch):
    assert tnp.default_device() == "cpu" or storage.on_device(tnp.zeros(1)._value())
    with tnp.device(DEV):
        assert tnp.zeros(3).device == DEV and tnp.asarray([1, 2]).device == DEV
    assert tnp.zeros(3).device == "cpu"
    monkeypatch.setenv("TILEWISE_DEVICE", DEV)
    assert tnp.ones(2).device == DEV
    tnp.set_device("cpu")
    try:
        assert tnp.ones(2).device == "cpu"
    finally:
        tnp.set_device(None)
