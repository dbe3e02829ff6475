"""Shared fixtures: every kernel test runs once per host backend (Warp-style: one body, every device)."""
import zlib

import numpy as np
import pytest

from tilewise import backends

HOST_BACKENDS = [b for b in ("reference", "cpu", "cuda-emulated") if b in backends.available()]


@pytest.fixture(params=HOST_BACKENDS)
def backend(request, monkeypatch):
    """Select the backend that tw.launch uses for host arrays, for the duration of one test."""
    monkeypatch.setenv("TILEWISE_BACKEND", request.param)
    return request.param


@pytest.fixture
def rng(request):
    """A fresh, but reproducible per test, random generator."""
    seed = zlib.crc32(request.node.nodeid.encode())  # hash() of a str changes with every interpreter run
    return np.random.default_rng(seed)


def random_array(rng, shape, dtype):
    """Random data of any tile dtype: never all zeros, with negatives for signed types."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -100), min(info.max, 100)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    return (rng.standard_normal(shape) * 2).astype(dtype)
