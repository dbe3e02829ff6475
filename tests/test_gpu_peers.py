"""The GPU validation kit's Triton column: Triton is never needed (the kit runs, and shows "—", where it
cannot be imported), and a Triton result is timed only once it matches the reference."""
import py_compile
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from tilewise.tools import gpu_check

PEERS = Path(gpu_check.__file__).with_name("gpu_peers_triton.py")


@pytest.fixture
def no_triton(monkeypatch):
    """Triton not installed: `import triton` raises ImportError (None in sys.modules does that)."""
    monkeypatch.setitem(sys.modules, "triton", None)
    monkeypatch.setitem(sys.modules, "triton.language", None)
    monkeypatch.delitem(sys.modules, "tilewise.tools.gpu_peers_triton", raising=False)


@pytest.fixture
def torch_with_gpu(monkeypatch):
    """A stand-in PyTorch that claims a GPU, so only Triton's absence keeps the peers away."""
    fake = SimpleNamespace(cuda=SimpleNamespace(is_available=lambda: True))
    monkeypatch.setitem(sys.modules, "torch", fake)
    return fake


def test_peers_module_needs_triton_and_says_so(no_triton, torch_with_gpu):
    with pytest.raises(ImportError, match="needs Triton and PyTorch.*never tilewise dependencies"):
        import tilewise.tools.gpu_peers_triton  # noqa: F401
    assert gpu_check.triton_peers() is None


def test_peers_module_compiles(tmp_path):
    py_compile.compile(str(PEERS), cfile=str(tmp_path / "peers.pyc"), doraise=True)
    text = PEERS.read_text()
    # Triton is imported only by this module, never by the package or the kit at import time
    assert "import triton" in text and "UNTESTED" in text
    assert "import triton" not in Path(gpu_check.__file__).read_text()


def test_gpu_check_emulated_without_triton(no_triton, monkeypatch, capsys):
    monkeypatch.setenv("TILEWISE_EMULATE_GPU", "1")
    monkeypatch.setenv("TILEWISE_EMULATOR_THREADS", "32")
    assert gpu_check.main(["--emulate", "--no-tests", "--reps", "1"]) == 0
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if ln.startswith("| kernel |"))
    assert header.endswith("| CuPy ms | Triton ms | Triton / tilewise |")
    rows = [ln for ln in out.splitlines() if ln.startswith("| ") and not ln.startswith(("| kernel", "| ---"))]
    assert {r.split(" | ")[0] for r in rows} >= {"| vector add fp32", "| softmax fp32", "| matmul fp16"}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 11 and cells[-2:] == ["—", "—"], row


def test_report_triton_cells():
    rows = [("vector add fp32", "1,000", 2.0, 12e9, "GB/s", 0.0, 1.0, None, 0.5),
            ("softmax fp32", "8x300", 1.0, 8e9, "GB/s", 0.0, None, None, "wrong: error 3.0e-01"),
            ("matmul fp16", "4096^3", 1.0, 2e12, "TFLOP/s", 1e-3, None, None)]  # an 8-tuple: no Triton figure
    text = gpu_check.report({"name": "H100", "arch": "sm_90", "driver": "CUDA 12.8"}, "5 passed", 3000.0, rows)
    assert "| 1.000 | 0.50x | n/a | 0.500 | 0.25x |" in text
    assert "| n/a | n/a | n/a | wrong: error 3.0e-01 | — |" in text
    assert "| matmul fp16 | 4096^3 | 1.000 | 2000.0 TFLOP/s |  | 1.0e-03 | n/a | n/a | n/a | — | — |" in text


def test_triton_cell_times_only_right_results(monkeypatch, capsys):
    monkeypatch.setattr(gpu_check, "_peer_ms", lambda fn, reps: 1.25)
    ref = np.linspace(-1, 1, 7)
    err = (lambda got: float(np.max(np.abs(got - ref))))
    assert gpu_check._triton_cell("x", lambda: ref + 1e-6, err, 3) == 1.25
    assert gpu_check._triton_cell("x", lambda: ref + 0.5, err, 3) == "wrong: error 5.0e-01"
    assert gpu_check._triton_cell("x", lambda: ref * np.nan, err, 3).startswith("wrong: error nan")

    def broken():
        raise RuntimeError("CompilationError: at 12:4")
    assert gpu_check._triton_cell("x", broken, err, 3) == "error: RuntimeError"
    log = capsys.readouterr().err
    assert "Triton x gave a wrong result" in log and "CompilationError: at 12:4" in log
