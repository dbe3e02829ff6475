"""TILEWISE_CPU compiles for another CPU than the host: an x86-64 level the host can run. The same kernels
give the same answers at every level, the code uses no vector register wider than its level has, and a
level the host cannot run, or a name that is no level, is refused with a clear error before anything runs."""
import os
import platform

import numpy as np
import pytest
from conftest import env, random_array, vectorised

import tilewise as tw
from tilewise import backends

pytestmark = [pytest.mark.skipif("cpu" not in backends.available(), reason="the cpu backend is off"),
              pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 levels only")]

# Registers each level may not use: (SSE: xmm only; AVX2: no zmm; AVX-512: any).
WIDER = {"x86-64": ("%ymm", "%zmm"), "x86-64-v2": ("%ymm", "%zmm"), "x86-64-v3": ("%zmm",), "x86-64-v4": ()}


def _host_runs(level):
    from tilewise.backends.cpu import compiler
    try:
        with env(TILEWISE_CPU=level):
            compiler._target_cpu()
        return True
    except tw.TileLaunchError:
        return False


@tw.kernel
def softplus_rows(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN))
    s = tw.log1p(tw.exp(t)) + tw.sin(t) * tw.sum(t, axis=1, keepdims=True)
    tw.store(y, index=(tw.bid(0), 0), tile=s)


@tw.kernel
def small_mma(a, b, c, T: tw.Constant[int]):
    acc = tw.mma(tw.load(a, (tw.bid(0), 0), (T, T)), tw.load(b, (0, 0), (T, T)), tw.zeros((T, T), tw.float32))
    tw.store(c, (tw.bid(0), 0), acc)


@pytest.mark.parametrize("level", list(WIDER))
def test_every_level_the_host_runs_agrees_with_numpy(level, rng, monkeypatch):
    if not _host_runs(level):
        pytest.skip(f"this host cannot run {level}")
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    monkeypatch.setenv("TILEWISE_CPU", level)
    softplus_rows.runtime_cache.clear()
    small_mma.runtime_cache.clear()
    x = random_array(rng, (13, 37), np.float32)
    y = np.empty_like(x)
    tw.launch(None, (tw.cdiv(13, 4),), softplus_rows, (x, y, 4, 40))
    x64 = x.astype(np.float64)
    want = np.log1p(np.exp(x64)) + np.sin(x64) * x64.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    a, b = random_array(rng, (20, 16), np.float32), random_array(rng, (16, 16), np.float32)
    c = np.empty((20, 16), np.float32)
    tw.launch(None, (2,), small_mma, (a, b, c, 16))
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)

    compiled = tw.compile(softplus_rows, (x, y, 4, 40), target="cpu")
    assert vectorised(compiled.code, "float")
    asm = compiled.asm
    assert not [r for r in WIDER[level] if r in asm], f"{level} code uses registers it does not have"
    softplus_rows.runtime_cache.clear()
    small_mma.runtime_cache.clear()


def test_levels_compile_apart(monkeypatch):
    """Each level is its own cache entry: its object code differs from the host's where the host is wider."""
    x = np.zeros((4, 64), np.float32)
    codes = {}
    for level in ("host", "x86-64-v2"):
        monkeypatch.setenv("TILEWISE_CPU", level)
        softplus_rows.runtime_cache.clear()
        codes[level] = tw.compile(softplus_rows, (x, x.copy(), 4, 64), target="cpu").binary
    softplus_rows.runtime_cache.clear()
    if any(r in tw.compile(softplus_rows, (x, x.copy(), 4, 64), target="cpu").asm for r in ("%ymm", "%zmm")):
        assert codes["host"] != codes["x86-64-v2"]


def test_unknown_target_is_refused(monkeypatch):
    monkeypatch.setenv("TILEWISE_CPU", "pentium-pro-max")
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    softplus_rows.runtime_cache.clear()
    x = np.zeros((4, 8), np.float32)
    y = np.full_like(x, 7.0)
    with pytest.raises(tw.TileLaunchError, match="TILEWISE_CPU='pentium-pro-max'.*x86-64-v2"):
        tw.launch(None, (1,), softplus_rows, (x, y, 4, 8))
    assert (y == 7.0).all()
    softplus_rows.runtime_cache.clear()


def test_a_level_above_the_host_is_refused(monkeypatch):
    """Code for AVX-512 on a host without it would die of an illegal instruction: refused instead."""
    from tilewise.backends.cpu import compiler
    monkeypatch.setattr(compiler.llvm, "get_host_cpu_features", lambda: {"sse4.2": True, "popcnt": True})
    monkeypatch.setenv("TILEWISE_CPU", "x86-64-v4")
    with pytest.raises(tw.TileLaunchError, match="x86-64-v4 needs avx512f"):
        compiler._target_cpu()
    monkeypatch.setenv("TILEWISE_CPU", "x86-64-v2")
    assert compiler._target_cpu() == ("x86-64-v2", "")


def test_matmul_blocks_follow_the_target(monkeypatch):
    from tilewise.backends.cpu import matmul
    from tilewise.ir import dtypes as D
    monkeypatch.setenv("TILEWISE_CPU", "x86-64-v2")
    assert matmul.block_shape(D.float32)[2] == 4
    if _host_runs("x86-64-v3"):
        monkeypatch.setenv("TILEWISE_CPU", "x86-64-v3")
        assert matmul.block_shape(D.float32)[2] == 8


def test_ci_sets_no_target_by_accident():
    assert os.environ.get("TILEWISE_CPU", "host") in ("host", *WIDER)


@tw.kernel
def convert(x, y, T: tw.Constant[int]):
    tw.store(y, tw.bid(0), tw.load(x, tw.bid(0), shape=T).astype(y.dtype))


def _same_bits(got, want):
    """Equal bit for bit, except that a NaN need only be a NaN of the same sign."""
    nan = np.isnan(want)
    assert (np.isnan(got) == nan).all()
    assert (np.signbit(got[nan]) == np.signbit(want[nan])).all()
    np.testing.assert_array_equal(got[~nan].view(np.uint8), want[~nan].view(np.uint8))


@pytest.mark.parametrize("level", ["x86-64-v2", "host"])
def test_float16_conversions_are_exact_without_f16c(level, rng, monkeypatch):
    """x86-64-v2 has no F16C: the module defines LLVM's float16 libcalls itself (backends/cpu/half.py).
    Every float16 widens exactly, and float32 values (random bits, and every boundary: subnormals, the
    rounding ties, overflow to inf, NaNs) round to nearest even exactly as NumPy rounds them."""
    if not _host_runs(level):
        pytest.skip(f"this host cannot run {level}")
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    monkeypatch.setenv("TILEWISE_CPU", level)
    convert.runtime_cache.clear()
    code = tw.compile(convert, (np.zeros(4, np.float32), np.zeros(4, np.float16), 4), target="cpu").code
    assert ("define half @__truncsfhf2" in code) == (level == "x86-64-v2")
    halves = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(np.float16)
    widened = np.empty(halves.shape, np.float32)
    tw.launch(None, (tw.cdiv(halves.size, 1024),), convert, (halves, widened, 1024))
    _same_bits(widened, halves.astype(np.float32))

    with np.errstate(over="ignore", invalid="ignore"):
        edges = np.concatenate([widened, np.nextafter(widened, np.float32(np.inf)),
                                np.nextafter(widened, np.float32(-np.inf)),
                                (widened.astype(np.float64) + 2.0 ** -25).astype(np.float32),  # ties, small
                                np.float32([65504, 65519.99, 65520, 65536, 1e10, np.inf, -np.inf, 2.0 ** -25,
                                            2.0 ** -24 * 1.5, 2.0 ** -26, 5.96e-8, 6.1e-5])])
    floats = np.concatenate([edges, rng.integers(0, 1 << 32, 200_000, dtype=np.uint64).astype(np.uint32)
                             .view(np.float32)])
    narrowed = np.empty(floats.shape, np.float16)
    with np.errstate(over="ignore", invalid="ignore"):
        tw.launch(None, (tw.cdiv(floats.size, 1024),), convert, (floats, narrowed, 1024))
        _same_bits(narrowed, floats.astype(np.float16))
    convert.runtime_cache.clear()
