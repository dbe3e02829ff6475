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


def test_tiles_beyond_static_shared_memory_are_refused_clearly():
    """More than 48 KB of live tiles: a TileUnsupportedError at the op making the largest tile, before
    NVRTC (whose ptxas error would name no source line); a smaller tile compiles."""
    import numpy as np
    x = np.zeros((64, 1024), np.float32)
    with pytest.raises(tw.TileUnsupportedError, match=r"48 KB.*tile<16x1024xfloat32>") as info:
        tw.compile(_big_rows, (x, x.copy(), 16, 1024), target="cuda:sm_90")
    assert "the largest tile" in str(info.value)
    assert tw.compile(_big_rows, (x, x.copy(), 4, 1024), target="cuda:sm_90").resources["shared_bytes"] <= 48 * 1024
