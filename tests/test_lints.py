"""The static analyzer (tilewise.ir.lints): each lint on a kernel that triggers it (code, line, column)
and on one that does not; no findings on the examples and the demo at the arguments they run with;
occupancy against hand-computed values; `tilewise lint` and `tilewise inspect --show lints`."""
import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

import tilewise as tw
from tilewise import cli
from tilewise.backends.cuda.occupancy import occupancy
from tilewise.ir.lints import lint
from tilewise.tools import demo
from tilewise.tools.linting import compiled_launches, run_script

ROOT = Path(__file__).resolve().parent.parent
ZERO = tw.PaddingMode.ZERO
SOURCE = Path(__file__).read_text().splitlines()


def at(marker, token):
    """(line, 1-based column) of `token` on the line of this file that ends with the comment `marker`."""
    (n,) = [i for i, text in enumerate(SOURCE, 1) if text.rstrip().endswith(f"# {marker}")]
    return n, SOURCE[n - 1].index(token) + 1


def lints(kernel, args, target="cpu"):
    return tw.compile(kernel, args, target=target).lints


def codes(found):
    return [f.code for f in found]


def where(found, code):
    return [(f.line, f.col) for f in found if f.code == code]


def f32(*shape):
    return np.zeros(shape, np.float32)


def nvrtc():
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")


# ---- the kernels ----------------------------------------------------------------------------------

@tw.kernel
def rows(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(1, T), padding_mode=ZERO)
    tw.store(y, index=(tw.bid(0), 0), tile=t)


@tw.kernel
def column(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(T, 1), padding_mode=ZERO)  # column-load
    tw.store(y, index=(0, tw.bid(0)), tile=tw.transpose(t))


@tw.kernel
def orders(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(T, T), order=(1, 0), padding_mode=ZERO)  # order-load
    tw.store(y, index=(0, tw.bid(0)), tile=t)


@tw.kernel
def vadd(a, b, c, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, index=(i,), tile=tw.load(a, index=(i,), shape=(T,)) + tw.load(b, index=(i,), shape=(T,)))


@tw.kernel
def total(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(T,))
    tw.store(y, index=(tw.bid(0),), tile=tw.sum(t))  # sum-store


@tw.kernel
def total_zero(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(T,), padding_mode=ZERO)
    tw.store(y, index=(tw.bid(0),), tile=tw.sum(t))


@tw.kernel
def total_masked(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(T,))
    keep = tw.bid(0) * T + tw.arange(T) < x.shape[0]
    tw.store(y, index=(tw.bid(0),), tile=tw.sum(tw.where(keep, t, 0.0)))


@tw.kernel
def shifted(x, y, T: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(T,))
    tw.store(y, index=(tw.bid(0) + 1,), tile=t)  # shifted-store


@tw.kernel
def row_sums(x, y, n, T: tw.Constant[int]):
    """Whole tiles in the loop, the remainder masked: no padding reaches the sum."""
    acc = tw.zeros((1, T), dtype=tw.float32)
    for j in range(n // T):
        acc += tw.load(x, index=(tw.bid(0), j), shape=(1, T))
    if n % T != 0:
        t = tw.load(x, index=(tw.bid(0), n // T), shape=(1, T))
        acc += tw.where(n // T * T + tw.arange(T)[None, :] < n, t, 0.0)
    tw.store(y, index=(tw.bid(0),), tile=tw.sum(acc, axis=1))


@tw.kernel
def hist_in_loop(data, hist, T: tw.Constant[int]):
    for j in range(tw.num_tiles(data, axis=0, shape=(T,))):
        bins = tw.load(data, index=(j,), shape=(T,), padding_mode=ZERO)
        tw.atomic_add(hist, (bins,), 1, mask=j * T + tw.arange(T) < data.shape[0])  # atomic-in-loop


@tw.kernel
def hist(data, hist, T: tw.Constant[int]):
    bins = tw.load(data, index=(tw.bid(0),), shape=(T,), padding_mode=ZERO)
    tw.atomic_add(hist, (bins,), 1, mask=tw.bid(0) * T + tw.arange(T) < data.shape[0])


@tw.kernel
def square_twice(a, c, T: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(T,))
    y = tw.load(a, index=(tw.bid(0),), shape=(T,))  # second-load
    tw.store(c, index=(tw.bid(0),), tile=x * y)


@tw.kernel
def reload_after_store(a, T: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(T,))
    tw.store(a, index=(tw.bid(0),), tile=x * 2.0)
    y = tw.load(a, index=(tw.bid(0),), shape=(T,))
    tw.store(a, index=(tw.bid(0),), tile=y + 1.0)


@tw.kernel
def scaled(a, c, T: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0), 0), shape=(T, T))  # big-tile
    tw.store(c, index=(tw.bid(0), 0), tile=tw.exp(x) + tw.transpose(x))


# ---- each lint, with and without a finding ---------------------------------------------------------

def test_finding_fields_and_text():
    (f,) = lints(total, (f32(100), f32(7), 16))
    assert (f.code, f.severity, f.file, (f.line, f.col)) == ("undetermined-padding", "error", __file__,
                                                            at("sum-store", "tw.store"))
    assert str(f) == f"{__file__}:{f.line}:{f.col}: undetermined-padding: {f.message}"
    assert f"line {at('sum-store', 'tw.store')[0]}" in f.message and "100 is not a multiple of 16" in f.message


def test_uncoalesced_access():
    found = lints(column, (f32(64, 64), f32(64, 64), 16))
    assert where(found, "uncoalesced-access") == [at("column-load", "tw.load")]  # the transposed store is fine
    assert "axis 0" in found[0].message and "unit-stride axis (1)" in found[0].message
    assert where(lints(orders, (f32(64, 64), f32(64, 64), 16)), "uncoalesced-access") == [at("order-load", "tw.load")]
    assert lints(rows, (f32(8, 64), f32(8, 64), 64)) == []
    # a Fortran-ordered array: now the row load is the uncoalesced one, the column load is not
    fx = np.asfortranarray(f32(64, 64))
    assert codes(lints(rows, (fx, f32(64, 64), 64))) == ["uncoalesced-access"]
    assert "uncoalesced-access" not in codes(lints(column, (fx, f32(64, 64), 16)))
    # a strided view has no unit-stride axis: nothing a tile shape could fix
    assert lints(rows, (f32(8, 128)[:, ::2], f32(8, 64), 64)) == []


def test_uncoalesced_access_on_a_gpu_says_so():
    nvrtc()
    (f,) = [f for f in lints(column, (f32(64, 64), f32(64, 64), 16), "cuda:sm_90") if f.code == "uncoalesced-access"]
    assert "memory transactions" in f.message


def test_undetermined_padding():
    assert where(lints(shifted, (f32(100), f32(100), 16)), "undetermined-padding") == [at("shifted-store", "tw.store")]
    for k in (total_zero, total_masked):
        assert lints(k, (f32(100), f32(7), 16)) == []
    assert lints(total, (f32(96), f32(6), 16)) == []        # 96 = 6 tiles: no load reaches past the end
    assert lints(vadd, (f32(100), f32(100), f32(100), 16)) == []  # padding lands where the store drops it
    assert lints(row_sums, (f32(3, 300), f32(3), 300, 64)) == []


def test_atomic_in_loop():
    data, bins = np.zeros(100, np.int32), np.zeros(10, np.int32)
    assert where(lints(hist_in_loop, (data, bins, 32)), "atomic-in-loop") == [at("atomic-in-loop", "tw.atomic_add")]
    assert lints(hist, (data, bins, 32)) == []


def test_duplicate_load():
    found = lints(square_twice, (f32(256), f32(256), 64))
    assert where(found, "duplicate-load") == [at("second-load", "tw.load")]
    assert f"line {at('second-load', 'x')[0] - 1}" in found[0].message
    assert lints(reload_after_store, (f32(256), 64)) == []


def test_small_tile_on_the_cpu():
    c = tw.compile(vadd, (f32(256), f32(256), f32(256), 64), target="cpu")
    vector = c.resources["vector_bytes"]
    assert vector in (16, 32, 64) and c.lints == []
    small = vector // 4 // 2  # half a vector of float32
    found = lints(vadd, (f32(256), f32(256), f32(256), small))
    assert codes(found) == ["small-tile"] * 3 and f"{vector}-byte vector" in found[0].message
    assert lints(vadd, (f32(256), f32(256), f32(256), small), target="reference") == []  # a CPU-only lint


def test_register_spills_from_the_resources():
    # ptxas rarely spills this backend's code (tiles live in shared memory): feed the lint a report that does
    c = tw.compile(scaled, (f32(256, 256), f32(256, 256), 64), target="reference")
    spilled = {"arch": "sm_90", "registers": 255, "spill_store_bytes": 96, "spill_load_bytes": 128}
    (f,) = lint(c.function, "cuda:sm_90", spilled, c.layouts)
    assert (f.code, (f.line, f.col)) == ("register-spill", at("big-tile", "tw.load"))
    assert "96 bytes stored, 128 loaded" in f.message and "tile<64x64xfloat32>" in f.message
    assert lint(c.function, "cuda:sm_90", {**spilled, "spill_store_bytes": 0, "spill_load_bytes": 0}, c.layouts) == []
    assert lint(c.function, "cpu", spilled, c.layouts) == []  # spills are a CUDA lint


def test_low_occupancy():
    nvrtc()
    big = tw.compile(scaled, (f32(256, 256), f32(256, 256), 128), target="cuda:sm_90")
    r = big.resources
    assert r["shared_bytes"] >= 64 << 10 and r["occupancy"] < 0.25
    assert where(big.lints, "low-occupancy") == [at("big-tile", "tw.load")]
    assert "shared memory" in big.lints[0].message
    assert lints(scaled, (f32(256, 256), f32(256, 256), 32), "cuda:sm_90") == []


# ---- occupancy ----------------------------------------------------------------------------------

def test_occupancy_against_hand_counts():
    # sm_80, 128 threads, 64 registers, 40 KB: warps allow 64/4 = 16 CTAs, registers 16384 // 2048 = 8 warps
    # per sub-partition = 8 CTAs, shared memory 167936 // (40960 + 1024) = 4 CTAs -> 16 of 64 warps
    assert occupancy("sm_80", 128, 40 << 10, 64) == {"occupancy": 0.25, "max_ctas_per_sm": 4,
                                                    "occupancy_limit": "shared memory"}
    # sm_90: 233472 // 41984 = 5 CTAs -> 20 of 64 warps
    assert occupancy("sm_90", 128, 40 << 10, 64)["max_ctas_per_sm"] == 5
    assert occupancy("sm_90", 128, 40 << 10, 64)["occupancy"] == 0.3125
    # sm_75 (32 warps, 64 KB, no reservation): one 40 KB CTA fits -> 4 of 32 warps
    assert occupancy("sm_75", 128, 40 << 10, 64) == {"occupancy": 0.125, "max_ctas_per_sm": 1,
                                                    "occupancy_limit": "shared memory"}
    # sm_86, 128 registers: 4096 per warp, 4 warps per sub-partition = 16 warps = 4 CTAs of 48 warps
    assert occupancy("sm_86", 128, 0, 128) == {"occupancy": 0.3333, "max_ctas_per_sm": 4,
                                              "occupancy_limit": "registers"}
    # few registers, no shared memory: 48 warps hold 12 CTAs of 4 warps, fewer than the 16-CTA limit
    assert occupancy("sm_86", 128, 0, 16)["occupancy_limit"] == "warps"
    assert occupancy("sm_90a", 128, 0, 16) == occupancy("sm_90", 128, 0, 16)  # suffixes, newer archs
    assert occupancy("sm_121", 128, 0, 16) == occupancy("sm_120", 128, 0, 16)


def test_cuda_resources_report_occupancy():
    nvrtc()
    r = tw.compile(vadd, (f32(256), f32(256), f32(256), 64), target="cuda:sm_80").resources
    assert {k: r[k] for k in ("occupancy", "max_ctas_per_sm", "occupancy_limit")} == \
        occupancy("sm_80", r["threads_per_cta"], r["shared_bytes"], r["registers"])
    assert 0 < r["occupancy"] <= 1


# ---- no false positives ---------------------------------------------------------------------------

@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "examples").glob("*.py")))
def test_examples_give_no_findings(script):
    compiled = compiled_launches(lambda: run_script(ROOT / "examples" / script))
    assert compiled, f"{script} launched no kernels"
    assert [str(f) for c in compiled for f in c.lints] == []


def test_the_demo_gives_no_findings():
    with contextlib.redirect_stdout(io.StringIO()):
        compiled = compiled_launches(demo.main)
    assert {c.function.name for c in compiled} >= {"vector_add", "softmax", "layer_norm", "matmul", "flash_attention"}
    assert [str(f) for c in compiled for f in c.lints] == []


# ---- the command line -----------------------------------------------------------------------------

def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_lint_command_runs_the_script(capsys, tmp_path):
    script = tmp_path / "k.py"
    script.write_text(
        "import numpy as np\nimport tilewise as tw\n\n\n@tw.kernel\ndef total(x, y, T: tw.Constant[int]):\n"
        "    t = tw.load(x, index=(tw.bid(0),), shape=(T,))\n    tw.store(y, index=(tw.bid(0),), tile=tw.sum(t))\n\n\n"
        "if __name__ == '__main__':\n    print('running')\n"
        "    tw.launch(None, (7,), total, (np.ones(100, np.float32), np.zeros(7, np.float32), 16))\n")
    code, out, err = run_cli(capsys, "lint", str(script))
    assert code == 1 and "running" in err
    lines = out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{script}:8:5: undetermined-padding: the stored values")
    assert lines[1] == "1 finding(s) in 1 kernel specialisation(s)"
    code, out, _ = run_cli(capsys, "lint", str(script), "--args", "f32[96], f32[6], 16")
    assert (code, out) == (0, "no findings in 1 kernel specialisation(s)\n")
    code, _, err = run_cli(capsys, "lint", str(script), "--target", "cpu")
    assert code == 2 and "--target needs --args" in err


def test_lint_command_on_an_example(capsys):
    code, out, _ = run_cli(capsys, "lint", str(ROOT / "examples" / "vector_add.py"))
    assert (code, out) == (0, "no findings in 1 kernel specialisation(s)\n")


def test_lint_with_args_names_the_kernel(capsys):
    code, out, _ = run_cli(capsys, "lint", __file__, "square_twice", "--args", "f32[256], f32[256], 64")
    line, col = at("second-load", "tw.load")
    assert code == 1 and out.splitlines()[0].startswith(f"{__file__}:{line}:{col}: duplicate-load: ")
    code, _, err = run_cli(capsys, "lint", __file__, "--args", "f32[256], f32[256], 64")
    assert code == 2 and "name the one" in err


def test_inspect_shows_lints(capsys):
    code, out, _ = run_cli(capsys, "inspect", __file__, "column", "--args", "f32[64,64], f32[64,64], 16",
                           "--target", "cpu", "--show", "resources,lints")
    line, col = at("column-load", "tw.load")
    assert code == 0 and "vector_bytes: " in out
    assert out.split("== lints ==\n")[1].startswith(f"{__file__}:{line}:{col}: uncoalesced-access: ")
    code, out, _ = run_cli(capsys, "inspect", __file__, "rows", "--args", "f32[8,64], f32[8,64], 64",
                           "--target", "cpu", "--show", "lints")
    assert code == 0 and out.endswith("== lints ==\n(no findings)\n")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
