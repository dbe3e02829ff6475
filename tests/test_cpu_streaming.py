"""Streaming (non-temporal) stores on the cpu backend (backends/cpu/streaming.py). The size threshold is
lowered so that small arrays take the streaming path; results must equal NumPy's exactly, whatever the
destination's alignment, dtype, row length or tile shape, and stores that cannot stream must not."""
import numpy as np
import pytest
from conftest import env, random_array

import tilewise as tw
from tilewise import backends
from tilewise.backends.cpu import streaming

pytestmark = pytest.mark.skipif("cpu" not in backends.available(), reason="cpu backend unavailable")


@pytest.fixture(autouse=True)
def low_threshold(monkeypatch):
    monkeypatch.setattr(streaming, "STREAM_BYTES", 0)
    with env(TILEWISE_BACKEND="cpu", TILEWISE_CACHE="0"):  # the threshold is compiled in
        yield


@tw.kernel
def scaled_sum(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    x = tw.load(a, (i, j), (TM, TN))
    y = tw.load(b, (i, j), (TM, TN))
    tw.store(c, (i, j), x * 3 + y)


def _run(a, b, c, tm, tn):
    scaled_sum.runtime_cache.clear()
    grid = (tw.cdiv(a.shape[0], tm), tw.cdiv(a.shape[1], tn))
    tw.launch(None, grid, scaled_sum, (a, b, c, tm, tn))


def _offset(x, k):
    """`x` copied into a buffer at an offset of k elements: destinations at every alignment."""
    buf = np.empty(x.size + 16, x.dtype)
    y = buf[k:k + x.size].reshape(x.shape)
    y[...] = x
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int8, np.int64])
@pytest.mark.parametrize("shape, tile", [((3, 1000), (1, 1024)), ((8, 777), (4, 256)), ((5, 4100), (2, 2048))])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_streamed_stores_equal_numpy(dtype, shape, tile, offset, rng):
    a, b = random_array(rng, shape, dtype), random_array(rng, shape, dtype)
    c = _offset(random_array(rng, shape, dtype), offset)
    _run(a, b, c, *tile)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(c, (a * dtype(3) + b).astype(dtype))


def test_the_code_streams_only_where_it_may(rng):
    a = random_array(rng, (4, 512), np.float32)
    for tile, streams in [((2, 256), True), ((2, 32), False)]:  # rows under MIN_ROW_BYTES do not stream
        scaled_sum.runtime_cache.clear()
        code = tw.compile(scaled_sum, (a, a, a.copy(), *tile), target="cpu").code
        assert ("!nontemporal" in code) == streams and ("llvm.x86.sse.sfence" in code) == streams


@tw.kernel
def centred(a, c, TM: tw.Constant[int], TN: tw.Constant[int]):
    x = tw.load(a, (tw.bid(0), 0), (TM, TN))
    tw.store(c, (tw.bid(0), 0), x - tw.sum(x, axis=1, keepdims=True))


def test_kernels_with_reductions_do_not_stream(rng):
    """They are bound by compute, and the variant would only add compile time (kernel_may_stream)."""
    a = random_array(rng, (4, 512), np.float32)
    c = np.zeros_like(a)
    code = tw.compile(centred, (a, c, 2, 512), target="cpu").code
    assert "!nontemporal" not in code and streaming.CHUNK_NAME not in code
    tw.launch(None, (2,), centred, (a, c, 2, 512))
    np.testing.assert_allclose(c, a - a.astype(np.float64).sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-5)


def test_strided_and_transposed_destinations_take_the_plain_path(rng):
    a, b = random_array(rng, (6, 600), np.float32), random_array(rng, (6, 600), np.float32)
    wide = random_array(rng, (6, 1200), np.float32)
    odd = wide[:, 1::2].copy()
    c = wide[:, ::2]                    # innermost stride 2: no streaming, same results
    _run(a, b, c, 2, 256)
    np.testing.assert_array_equal(c, a * np.float32(3) + b)
    np.testing.assert_array_equal(wide[:, 1::2], odd)
    t = random_array(rng, (600, 6), np.float32).T   # innermost stride 6
    _run(a, b, t, 2, 256)
    np.testing.assert_array_equal(t, a * np.float32(3) + b)


def test_cells_outside_a_streamed_store_are_untouched(rng):
    a, b = random_array(rng, (4, 1000), np.float32), random_array(rng, (4, 1000), np.float32)
    buf = random_array(rng, (4, 1100), np.float32)
    before = buf.copy()
    _run(a, b, buf[:, 50:1050], 2, 512)   # partial last tiles go through the checked path
    np.testing.assert_array_equal(buf[:, 50:1050], a * np.float32(3) + b)
    np.testing.assert_array_equal(buf[:, :50], before[:, :50])
    np.testing.assert_array_equal(buf[:, 1050:], before[:, 1050:])


def test_threshold_follows_the_last_level_cache(tmp_path):
    """The threshold's input, the largest cache level's size, read from a sysfs-like tree; unreadable
    entries are skipped, and no tree at all gives None (then 24 MiB applies)."""
    from tilewise.backends.cpu.loading import last_level_cache_bytes

    for i, (level, size) in enumerate([("1", "32K"), ("1", "32K"), ("2", "512K"), ("3", "8M"), ("x", "1G")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(level + "\n")
        (d / "size").write_text(size + "\n")
    assert last_level_cache_bytes(tmp_path) == 8 << 20
    (tmp_path / "index3" / "size").write_text("32768K\n")
    assert last_level_cache_bytes(tmp_path) == 32 << 20
    assert last_level_cache_bytes(tmp_path / "missing") is None
