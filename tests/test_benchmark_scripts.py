"""The benchmark scripts at toy sizes: each checks its own results against NumPy (an assertion fails
the script), times with one repeat and reports a row run_all.py can read. This keeps them from rotting
as the language moves; the figures themselves are not tested. numba and numexpr are left out (their
JIT would take seconds); the scripts must run without them, as they do where the bench extra is absent."""
import importlib
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

CASES = [  # partial tiles everywhere: rows not a multiple of TM, columns not a power of two
    ("cpu_softmax", ["--rows", "37", "--cols", "300", "--tm", "2,4"]),
    ("cpu_layer_norm", ["--rows", "37", "--cols", "300", "--tm", "4"]),
    ("vector_add", ["--n", "10007", "--tile", "512,1024"]),
]


@pytest.fixture
def no_peers(monkeypatch):
    import common
    monkeypatch.setattr(common, "numba_module", lambda: None)
    monkeypatch.setattr(common, "numexpr_module", lambda: None)
    for name, _ in CASES:
        mod = importlib.import_module(name)
        for attr in ("numba_module", "numexpr_module"):
            if hasattr(mod, attr):
                monkeypatch.setattr(mod, attr, lambda: None)


@pytest.mark.parametrize("script,argv", CASES, ids=[c[0] for c in CASES])
def test_script_runs_and_reports(backend, no_peers, capsys, script, argv):
    if backend not in ("reference", "cpu"):
        pytest.skip("the scripts measure host backends")
    ratio = importlib.import_module(script).main(argv + ["--repeat", "1", "--backend", backend])
    out = capsys.readouterr().out
    rows = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(rows) == 1 and rows[0]["ratio"] == pytest.approx(ratio)
    assert rows[0]["tilewise_ms"] > 0 and rows[0]["numba_ms"] is None
    assert "GB/s" in rows[0]["limit"] and ("met" in out)


def test_run_all_table_from_plain_output():
    import run_all
    out = "\n".join(["  tiles sweep: tiles=8x8x8 0.50 ms (first launch 0.1s)", "matmul 8x8x8 f32, tiles",
                     "  tilewise cpu   2.00 ms  1.0 GFLOP/s",
                     "  numpy.matmul   1.00 ms  2.0 GFLOP/s", "  numba njit     4.00 ms  0.5 GFLOP/s",
                     "  nominal peak: 2 cores x 2 FMA x 8 lanes x 2 x 2.45 GHz = 157 GFLOP/s"])
    row = run_all.parse_plain(out, 0.5)
    assert (row["tilewise_ms"], row["baseline_ms"], row["numba_ms"], row["ratio"]) == (2.0, 1.0, 4.0, 0.5)
    table = run_all.table([row, {"kernel": "x.py", "error": "exit 1"}])
    assert "| matmul 8x8x8 f32 | 2.00 ms | numpy.matmul 1.00 ms | **0.50x** | >= 0.5x: met |" in table
    assert "157 GFLOP/s" in table and "failed: exit 1" in table


def test_matmul_script_sweeps_tiles_and_reports(backend, monkeypatch, capsys):
    if backend != "cpu":
        pytest.skip("the matmul script measures the cpu backend")
    import cpu_matmul
    import run_all
    monkeypatch.setattr(cpu_matmul, "numba_matmul", lambda: None)
    ratio = cpu_matmul.main(["--n", "70", "--tiles", "32x32x16,16x64x32", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "tiles sweep: tiles=32x32x16" in out and "16x64x32" in out
    row = run_all.parse_plain(out, 0.5)
    assert row["baseline"] == "numpy.matmul" and row["ratio"] > 0 and ratio > 0  # printed times are rounded


def test_numpy_script_runs_and_reports(monkeypatch, capsys):
    import common
    import numpy_fused
    monkeypatch.setattr(common, "numexpr_module", lambda: None)
    monkeypatch.setattr(numpy_fused, "numexpr_module", lambda: None)
    numpy_fused.main(["--n", "70001", "--repeat", "1"])
    out = capsys.readouterr().out
    rows = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert len(rows) == 3 and all(r["tilewise_ms"] > 0 for r in rows)
    assert "one op read back at once" in out
