"""The `tilewise` command, run as a user would (a subprocess), and the demo's checking logic."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tilewise import backends, cli, demo


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "tilewise", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


@pytest.mark.parametrize("name", [b for b in ("reference", "cpu") if b in backends.available()])
def test_demo_passes_on_every_host_backend(name):
    r = run_cli("demo", TILEWISE_BACKEND=name)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"'{name}' backend" in r.stdout
    for kernel in ("vector add", "softmax", "layer norm", "matmul", "flash attention", "flash attention causal"):
        row = next(line for line in r.stdout.splitlines() if line.startswith(kernel + " "))
        assert " pass " in row, row
    assert "FAIL" not in r.stdout
    assert "all 6 kernels match NumPy" in r.stdout


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
