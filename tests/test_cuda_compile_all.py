"""Every kernel of every script in examples/ compiles with NVRTC for sm_80 and sm_90: a cubin, no
spills to local memory, and a register count that leaves room for the CTA (ptxas -v, reported in
`resources`; cuda.core's ObjectCode itself does not expose them). Skips where cuda-core / NVRTC are
not installed. The kernels and their arguments come from running each example's main() on the
reference backend with tw.launch recorded."""
import pathlib
import runpy

import pytest

import tilewise as tw
from tilewise.backends.cuda import codegen

pytest.importorskip("cuda.core")
pytest.importorskip("cuda.bindings.nvrtc")

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def _launches(path, monkeypatch):
    """(kernel, args) of every distinct kernel that the example launches."""
    seen, real = {}, tw.launch

    def record(stream, grid, kernel, args):
        seen.setdefault(kernel.__name__ if hasattr(kernel, "__name__") else id(kernel), (kernel, args))
        return real(stream, grid, kernel, args)

    monkeypatch.setattr(tw, "launch", record)
    monkeypatch.setenv("TILEWISE_BACKEND", "reference")
    assert runpy.run_path(str(path), run_name=f"example_{path.stem}")["main"]() == 0
    return list(seen.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_kernels_compile_with_nvrtc(path, monkeypatch, capsys):
    launches = _launches(path, monkeypatch)
    assert launches
    for kernel, args in launches:
        for arch in ("sm_80", "sm_90"):
            c = tw.compile(kernel, args, target=f"cuda:{arch}")
            where = f"{path.stem}: {c.function.name} for {arch}"
            assert c.binary[:4] == b"\x7fELF", where
            assert codegen.kernel_name(c.function) in c.code, where
            r = c.resources
            assert r["arch"] == arch and {"registers", "spill_store_bytes", "spill_load_bytes"} <= set(r), where
            assert r["spill_store_bytes"] == 0 and r["spill_load_bytes"] == 0, (where, r)
            assert r["stack_bytes"] == 0, (where, r)  # no local memory at all
            # A canary for register blow-ups: the most today is 122 (flash_attention, sm_80); the hardware's
            # limit is 255 per thread.
            assert 0 < r["registers"] <= 160, (where, r)


@tw.kernel
def _big_rows(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN))  # <- the largest tile
    tw.store(y, index=(tw.bid(0), 0), tile=rows - tw.max(rows, axis=1, keepdims=True))


def test_tiles_beyond_48_kb_take_dynamic_shared_memory_up_to_the_arch_limit():
    """Over 48 KB of live tiles: dynamic shared memory, up to what a CTA may opt into on the target
    (227 KB on sm_90, 64 KB on sm_75); beyond it a TileUnsupportedError at the op making the largest
    tile, before NVRTC or the driver (whose errors would name no source line)."""
    import numpy as np
    x = np.zeros((64, 1024), np.float32)
    small = tw.compile(_big_rows, (x, x.copy(), 4, 1024), target="cuda:sm_90")
    assert small.resources["dynamic_shared_bytes"] == 0 and "__shared__ __align__(16)" in small.code
    big = tw.compile(_big_rows, (x, x.copy(), 16, 1024), target="cuda:sm_90")   # 64 KB of rows
    assert big.resources["dynamic_shared_bytes"] == big.resources["shared_bytes"] > 48 * 1024
    assert "TW_DYNAMIC_SHARED(tw_smem" in big.code and big.binary[:4] == b"\x7fELF"
    with pytest.raises(tw.TileUnsupportedError, match=r"64 KB\) a CTA may use on sm_75.*tile<16x1024xfloat32>"):
        tw.compile(_big_rows, (x, x.copy(), 16, 1024), target="cuda:sm_75")
    with pytest.raises(tw.TileUnsupportedError, match=r"227 KB.*tile<64x1024xfloat32>") as info:
        tw.compile(_big_rows, (x, x.copy(), 64, 1024), target="cuda:sm_90")
    assert "the largest is" in str(info.value)


@tw.kernel
def _row_sums(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    acc = tw.zeros((TM, TN), dtype=tw.float32)
    for k in range(tw.num_tiles(x, axis=1, shape=(TM, TN))):
        acc = acc + tw.load(x, index=(tw.bid(0), k), shape=(TM, TN))   # double-buffered where it fits
    tw.store(y, index=(tw.bid(0), 0), tile=acc)


def test_double_buffering_gives_way_where_it_would_not_fit(monkeypatch):
    import numpy as np

    from tilewise.backends.cuda import storage
    x, y = np.zeros((16, 4096), np.float32), np.zeros((16, 1024), np.float32)
    piped = tw.compile(_row_sums, (x, y, 8, 1024), target="cuda:sm_90")
    assert "tw_cp_async_wait<1>" in piped.code
    single = codegen.generate(piped.function, pipeline=False)[1].storage.total
    assert single < piped.resources["shared_bytes"]
    monkeypatch.setitem(storage.SHARED_LIMITS, 90, single)   # room for one buffer per tile, not two
    _row_sums.runtime_cache.clear()
    plain = tw.compile(_row_sums, (x, y, 8, 1024), target="cuda:sm_90")
    assert "tw_cp_async_wait<1>" not in plain.code and plain.resources["shared_bytes"] == single
