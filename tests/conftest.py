"""Shared fixtures: every kernel test runs once per host backend (Warp-style: one body, every device)."""
import os
import re
import shutil
import tempfile
import zlib
from contextlib import contextmanager

import numpy as np
import pytest

import tilewise as tw
from tilewise import backends


def pytest_configure(config):
    """The compile cache goes to a directory of this session's own (removed after it), so tests never
    read or fill ~/.cache; a TILEWISE_CACHE_DIR set by the caller is kept (CI may keep one across runs)."""
    if not os.environ.get("TILEWISE_CACHE_DIR"):
        config._tilewise_cache = tempfile.mkdtemp(prefix="tilewise-test-cache-")
        os.environ["TILEWISE_CACHE_DIR"] = config._tilewise_cache


def pytest_unconfigure(config):
    d = getattr(config, "_tilewise_cache", None)
    if d:
        shutil.rmtree(d, ignore_errors=True)
        os.environ.pop("TILEWISE_CACHE_DIR", None)


# TILEWISE_TEST_BACKENDS=cuda (what `python -m tilewise.tools.gpu_check` sets) runs the suite on a GPU instead.
HOST_BACKENDS = os.environ["TILEWISE_TEST_BACKENDS"].split(",") if os.environ.get("TILEWISE_TEST_BACKENDS") else \
    [b for b in ("reference", "cpu", "cuda-emulated") if b in backends.available()]


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


def vector_widths(code, elem):
    """The lane counts of the `<N x elem>` vector types in LLVM IR text. Tests ask only that some are wider
    than one lane: how wide depends on the host (SSE and NEON 4 floats, AVX2 8, AVX-512 16)."""
    return {int(n) for n in re.findall(rf"<(\d+) x {re.escape(elem)}>", code)}


def vectorised(code, elem):
    return max(vector_widths(code, elem), default=1) >= 2


@contextmanager
def env(**values):
    """Set (or, with None, unset) environment variables for a with-block, then restore them. For code
    that cannot take the monkeypatch fixture (helpers shared by many tests, context managers)."""
    saved = {k: os.environ.get(k) for k in values}

    def apply(items):
        for k, v in items:
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    apply(values.items())
    try:
        yield
    finally:
        apply(saved.items())


def fresh_copy(a):
    """A copy of a launch argument that no launch has touched: arrays (and lists of them) are copied,
    anything else is returned as is. A view becomes the same view (shape, strides, byte offset, so also
    alignment) of a fresh copy of the array that owns its memory, whose `.base` that copy is: strided and
    misaligned launches stay strided and misaligned, and a test can see what a store did outside the view."""
    if isinstance(a, list):
        return [fresh_copy(x) for x in a]
    if not isinstance(a, np.ndarray):
        return a
    if a.base is None:
        return a.copy()
    owner = a
    while isinstance(owner.base, np.ndarray):
        owner = owner.base
    offset = a.__array_interface__["data"][0] - owner.__array_interface__["data"][0]
    return np.ndarray(a.shape, a.dtype, buffer=owner.copy(order="K"), offset=offset, strides=a.strides)


def run_on(names, kernel, grid, args, outs=None, **environ):
    """Launch `kernel` once on each backend in `names`, each time with fresh copies of `args` (and the
    environment variables `environ` set for the launch); returns one list per backend of the arguments
    at the indices `outs` after its launch, or of every array argument when `outs` is None."""
    results = []
    for name in names:
        copies = [fresh_copy(a) for a in args]
        with env(TILEWISE_BACKEND=name, **environ):
            tw.launch(None, grid, kernel, tuple(copies))
        results.append([a for a in copies if isinstance(a, np.ndarray)] if outs is None else
                       [copies[i] for i in outs])
    return tuple(results)
