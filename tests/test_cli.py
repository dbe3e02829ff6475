"""The `tilewise` command, run as a user would (a subprocess), and the demo's checking logic."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tilewise import backends, cli
from tilewise.tools import demo


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tilewise", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize("name", [b for b in ("reference", "cpu") if b in backends.available()])
def test_demo_passes_on_every_host_backend(name):
    r = run_cli("demo", TILEWISE_BACKEND=name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"'{name}' backend" in r.stdout
    for kernel in ("vector add", "softmax", "layer norm", "matmul", "flash attention", "flash attention causal",
                   "tilewise.numpy expression"):
        row = next(line for line in r.stdout.splitlines() if line.startswith(kernel + " "))
        assert " pass " in row, row
    assert "FAIL" not in r.stdout
    assert "all 7 kernels match NumPy" in r.stdout


def test_demo_fails_with_nonzero_exit_when_kernels_cannot_run():
    r = run_cli("demo", TILEWISE_BACKEND="no-such-backend")
    assert r.returncode == 1
    assert "FAIL" in r.stdout and "unknown backend 'no-such-backend'" in r.stdout


def test_demo_check_rejects_a_wrong_result(rng):
    def wrong(rng):
        ref = rng.standard_normal(50)
        got = ref.copy()
        got[7] += 1e-3
        return "50", got, ref, 1e-5, 1e-5
    name, shape, err, passed, _ = demo.run_case("wrong", wrong, rng)
    assert not passed and float(err) == pytest.approx(1e-3, rel=1e-6)

    def nan(rng):
        return "1", np.array([np.nan]), np.array([1.0]), 1e-5, 1e-5
    assert demo.run_case("nan", nan, rng)[3] is False


def test_info_reports_versions_backends_and_devices():
    r = run_cli("info")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for key in ("tilewise", "python", "numpy", "ml_dtypes", "llvmlite", "backends", "host", "cpu", "cuda"):
        assert any(line.startswith(key + " ") for line in out.splitlines()), (key, out)
    assert np.__version__ in out
    assert "reference" in next(line for line in out.splitlines() if line.startswith("backends"))
    assert f"{cli.usable_cores()} cores" in out


def test_info_names_the_backend_chosen_by_the_environment():
    r = run_cli("info", TILEWISE_BACKEND="reference")
    assert "host       reference (from TILEWISE_BACKEND)" in r.stdout


def test_cuda_is_reported_without_raising():
    devices = cli.cuda_devices()
    assert isinstance(devices, list) or devices.startswith("not available")


def test_no_command_prints_usage_and_exits_2():
    r = run_cli()
    assert r.returncode == 2
    assert "demo" in r.stdout and "info" in r.stdout
    r = run_cli("bogus")
    assert r.returncode == 2 and "invalid choice" in r.stderr


# ---- tilewise cache info|clear ---------------------------------------------------------------------

def test_cache_info_and_clear(tmp_path, monkeypatch):
    from tilewise.support import diskcache as cache
    root = tmp_path / "cache"
    env = {"TILEWISE_CACHE_DIR": str(root)}
    r = run_cli("cache", "info", **env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"cache      {root} (enabled)"
    assert "total               0 entries" in r.stdout
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(root))
    cache.put("cpu", "a", b"x" * 3000)
    cache.put("cpu", "b", b"y")
    cache.put("cuda", "c", b"z")
    r = run_cli("cache", "info", **env)
    lines = {line.split()[0]: line for line in r.stdout.splitlines()}
    assert "2 entries" in lines["cpu"] and "1 entries" in lines["cuda"] and "3 entries" in lines["total"]
    assert "KiB" in lines["cpu"]
    r = run_cli("cache", "clear", **env)
    assert r.returncode == 0 and r.stdout.strip() == f"removed 3 entries from {root}"
    assert "total               0 entries" in run_cli("cache", "info", **env).stdout
    assert "disabled" in run_cli("cache", "info", TILEWISE_CACHE="0", **env).stdout
    assert run_cli("cache", "bogus").returncode == 2


# ---- tilewise inspect --------------------------------------------------------------------------------

KERNEL_FILE = '''
import tilewise as tw

@tw.kernel
def softmax(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    e = tw.exp(rows - tw.max(rows, axis=1, keepdims=True))
    tw.store(y, index=(tw.bid(0), 0), tile=e / tw.sum(e, axis=1, keepdims=True))

@tw.kernel
def first(xs, y, T: tw.Constant[int]):
    tw.store(y, (0,), tw.load(xs[0], (0,), (T,)) + len(xs))

def not_a_kernel():
    pass

if __name__ == "__main__":
    raise SystemExit("inspect must not run the file's main block")
'''
SOFTMAX_ARGS = "f32[256,1024], f32[256,1024], 4, 1024"


@pytest.fixture
def kernel_file(tmp_path):
    p = tmp_path / "kernels.py"
    p.write_text(KERNEL_FILE)
    return str(p)


def inspect(capsys, *argv):
    code = cli.main(["inspect", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _section(out, name):
    return out.split(f"== {name} ==\n", 1)[1].split("\n== ", 1)[0]


def test_parse_args_specs():
    from tilewise.tools.inspection import parse_args
    a = parse_args("f32[256,1024], bf16[2, 3], i8[], (u16[4], f64[5]), 4, -2, 0x10, 010, 1.5, 1e-3, True, false")
    assert a[0].shape == (256, 1024) and a[0].dtype == np.float32
    assert a[1].shape == (2, 3) and str(a[1].dtype) == "bfloat16"
    assert a[2].shape == () and a[2].dtype == np.int8
    assert [x.dtype for x in a[3]] == [np.uint16, np.float64] and a[3][1].shape == (5,)
    assert a[4:] == (4, -2, 16, 10, 1.5, 1e-3, True, False)
    assert type(a[7]) is int and type(a[10]) is bool
    assert parse_args("float32[3], int64[2]")[1].dtype == np.int64
    assert parse_args("") == ()


@pytest.mark.parametrize("target", [b for b in ("cpu", "reference") if b in backends.available()])
def test_inspect_prints_each_stage(capsys, kernel_file, target):
    import tilewise as tw
    from tilewise.tools.inspection import load_kernel, parse_args
    code, out, err = inspect(capsys, kernel_file, "softmax", "--args", SOFTMAX_ARGS, "--target", target)
    assert code == 0, err
    assert out.startswith(f"# softmax from {kernel_file} for {target}")
    ir = _section(out, "ir")
    assert ir.startswith("func @softmax(%x: array<float32, 2d, unit-stride>") and "tile<4x1024xfloat32>" in ir
    want = tw.compile(load_kernel(kernel_file, "softmax"), parse_args(SOFTMAX_ARGS), target=target)
    if target == "cpu":
        assert "define" in _section(out, "code") and "tw_run" in _section(out, "code")
        binary = _section(out, "binary")
        assert binary.startswith(f"{len(want.binary)} bytes; first 64:")
        assert "0000  7f 45 4c 46" in binary  # an ELF object
    else:
        assert "(the reference backend has no code)" in out and "(the reference backend has no binary)" in out


def test_inspect_show_and_out(capsys, kernel_file, tmp_path):
    if "cpu" not in backends.available():
        pytest.skip("cpu backend not registered")
    dest = tmp_path / "softmax.o"
    code, out, err = inspect(capsys, kernel_file, "softmax", "--args", SOFTMAX_ARGS, "--target", "cpu",
                             "--show", "ir,binary", "--out", str(dest))
    assert code == 0, err
    assert "== code ==" not in out and "== ir ==" in out
    assert dest.read_bytes()[:4] == b"\x7fELF"
    assert f"{dest.stat().st_size} bytes written to {dest}" in out


@pytest.mark.parametrize("target, marker", [("cpu", "tw_run:"), ("cuda:sm_90", ".target sm_90")])
def test_inspect_shows_assembly(capsys, kernel_file, target, marker):
    if target == "cpu" and "cpu" not in backends.available():
        pytest.skip("cpu backend not registered")
    if target.startswith("cuda"):
        pytest.importorskip("cuda.bindings.nvrtc")
    code, out, err = inspect(capsys, kernel_file, "softmax", "--args", SOFTMAX_ARGS, "--target", target,
                             "--show", "asm")
    assert code == 0, err
    assert "== asm ==" in out and marker in out and "== ir ==" not in out


def test_inspect_a_kernel_taking_a_list_of_arrays(capsys, kernel_file):
    code, out, err = inspect(capsys, kernel_file, "first", "--args", "(f32[8], f32[8]), f32[8], 8",
                             "--target", "reference", "--show", "ir")
    assert code == 0, err
    assert "func @first" in out


@pytest.mark.parametrize("argv, message", [
    (["softmax", "--args", "f33[4], f32[4], 4, 4"], "unknown dtype 'f33'"),
    (["softmax", "--args", "f32[4,x], f32[4], 4, 4"], "argument 1 ('f32[4,x]'): a shape is a list"),
    (["softmax", "--args", "f32[4], hello, 4, 4"], "argument 2 ('hello') is not understood"),
    (["softmax", "--args", "f32[4, f32[4]"], "unclosed bracket"),
    (["softmax", "--args", "f32[4],, 4"], "argument 2 is empty"),
    (["softmax", "--args", SOFTMAX_ARGS, "--show", "ir,ptx"], "--show takes a comma-separated subset"),
    (["nope", "--args", SOFTMAX_ARGS], "has no @tw.kernel named 'nope'; its kernels: first, softmax"),
    (["not_a_kernel", "--args", SOFTMAX_ARGS], "has no @tw.kernel named 'not_a_kernel'"),
])
def test_inspect_bad_input_is_one_line_and_exit_2(capsys, kernel_file, argv, message):
    code, out, err = inspect(capsys, kernel_file, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("tilewise inspect: error: ") and message in err, err


def test_inspect_missing_file_and_kernel_errors(capsys, kernel_file, tmp_path):
    code, _, err = inspect(capsys, str(tmp_path / "none.py"), "k", "--args", "4")
    assert code == 2 and "no such file" in err
    # arguments that do not fit the kernel: the TileError's message, exit 1, no traceback
    code, _, err = inspect(capsys, kernel_file, "softmax", "--args", "f32[4], f32[4], 4", "--target", "reference")
    assert code == 1 and err.startswith("tilewise inspect: Tile") and "Traceback" not in err


def test_inspect_runs_as_a_command(kernel_file):
    r = run_cli("inspect", kernel_file, "softmax", "--args", "f32[8,16], f32[8,16], 2, 16", "--target", "reference",
                "--show", "ir")
    assert r.returncode == 0, r.stderr
    assert "func @softmax" in r.stdout
    r = run_cli("inspect", kernel_file, "softmax", "--args", "f32[8", "--target", "reference")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0


def test_inspect_cuda_target_shows_resources(capsys, kernel_file):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    code, out, err = inspect(capsys, kernel_file, "softmax", "--args", "f32[64,128], f32[64,128], 2, 128",
                             "--target", "cuda:sm_80", "--show", "code,resources,binary")
    assert code == 0, err
    assert "extern \"C\" __global__" in _section(out, "code")
    assert "registers: " in _section(out, "resources") and "arch: sm_80" in _section(out, "resources")
    assert " bytes; first 64:" in _section(out, "binary")
