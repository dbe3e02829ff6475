"""The profiler: launches recorded with exact bytes and FLOPs (hand counts), scopes from several threads
and nested, the Chrome trace, user ranges, the roofline, the CLI, and the launch path with no profile."""
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tilewise as tw
import tilewise.runtime.launch  # noqa: F401 - the module, not the function the package exports
from tilewise import profiler
from tilewise.profiler import count, display_name, sizes_of

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from matmul import matmul  # noqa: E402 - the shipped kernel, not a copy

launch_module = sys.modules["tilewise.runtime.launch"]


@tw.kernel
def vadd(a, b, c, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, index=(i,), tile=tw.load(a, index=(i,), shape=(T,)) + tw.load(b, index=(i,), shape=(T,)))


@tw.kernel
def row_sum(x, out, TM: tw.Constant[int], TN: tw.Constant[int]):
    i = tw.bid(0)
    t = tw.load(x, index=(i, 0), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    tw.store(out, index=(i,), tile=tw.sum(t, axis=1))


@tw.kernel
def gather_by(x, idx, out, T: tw.Constant[int]):
    i = tw.bid(0)
    ix = tw.load(idx, index=(i,), shape=(T,))
    tw.store(out, index=(i,), tile=tw.gather(x, ix))



def test_vector_add_moves_12n_bytes_on_every_backend(backend):
    n, t = 1000, 256  # four blocks, the last one partial: only its in-bounds elements count
    a, b = np.ones(n, np.float32), np.full(n, 2, np.float32)
    c = np.empty_like(a)
    with profiler.profile() as prof:
        for _ in range(3):
            tw.launch(None, (tw.cdiv(n, t),), vadd, (a, b, c, t))
    assert (c == 3).all()
    (k,) = prof.kernels()
    assert (k.name, k.launches, k.backend) == ("vadd", 3, backend)
    assert k.bytes == 3 * 12 * n and k.flops == 3 * n
    assert k.cache["memory"] >= 2 and k.time_s > 0 and k.gbps > 0 and k.exact
    first = prof.launches[0]
    assert first.grid == (4, 1, 1) and (first.cache == "memory" or first.compile_s > 0)


def test_matmul_with_a_k_loop_does_2mnk_flops():
    m, n, k = 100, 72, 90  # partial tiles on every axis, including the last K tile
    a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
    c = np.empty((m, n), np.float32)
    with profiler.profile() as prof:
        tw.launch(None, (tw.cdiv(m, 32), tw.cdiv(n, 32), 1), matmul, (a, b, c, 32, 32, 16))
    (rec,) = prof.launches
    assert rec.flops == 2 * m * n * k
    # A is read once per column of blocks, B once per row of blocks, C written once
    assert rec.bytes == 4 * (m * k * tw.cdiv(n, 32) + k * n * tw.cdiv(m, 32) + m * n)
    assert rec.exact


def test_reduction_counts_in_bounds_adds():
    m, n = 50, 30
    x, out = np.ones((m, n), np.float32), np.empty(m, np.float32)
    with profiler.profile() as prof:
        tw.launch(None, (tw.cdiv(m, 16),), row_sum, (x, out, 16, 32))
    assert (out == n).all()
    (rec,) = prof.launches
    assert rec.flops == m * (n - 1)  # n - 1 additions per row
    assert rec.bytes == 4 * (m * n + m)


def test_gather_counts_only_in_bounds_indices_and_data_dependence_is_flagged():
    x = np.arange(10, dtype=np.float32)
    idx = np.array([0, 3, 9, 12, -1, 5, 7, 20], np.int32)  # three indices fall outside x
    out = np.empty(8, np.float32)
    with profiler.profile() as prof:
        tw.launch(None, (2,), gather_by, (x, idx, out, 4))
    (rec,) = prof.launches
    # indices come from memory: the gather counts as all in bounds, and the record says so
    assert rec.bytes == 4 * 8 + 4 * 8 + 4 * 8 and not rec.exact
    assert "approximate" in prof.table()


def test_nested_scopes_each_see_their_own_launches():
    a = np.ones(64, np.float32)
    c = np.empty_like(a)
    with profiler.profile() as outer:
        tw.launch(None, (1,), vadd, (a, a, c, 64))
        with profiler.profile() as inner:
            tw.launch(None, (1,), vadd, (a, a, c, 64))
        tw.launch(None, (1,), vadd, (a, a, c, 64))
    assert len(outer.launches) == 3 and len(inner.launches) == 1
    assert inner.launches[0] is outer.launches[1]
    assert not launch_module._listeners  # closed scopes leave nothing behind


def test_launches_from_several_threads():
    a = np.ones(256, np.float32)
    # All four stay alive until each has launched: a finished thread's ident may be given to the next one.
    together = threading.Barrier(4)

    def work():
        c = np.empty_like(a)
        together.wait()
        for _ in range(5):
            tw.launch(None, (2,), vadd, (a, a, c, 128))
        together.wait()

    with profiler.profile() as prof:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(prof.launches) == 20 and len({r.thread for r in prof.launches}) == 4
    assert prof.kernels()[0].bytes == 20 * 12 * 256


def test_chrome_trace_and_ranges(tmp_path):
    a = np.ones(100, np.float32)
    c = np.empty_like(a)

    @tw.kernel
    def fresh(a, b, c, T: tw.Constant[int]):  # a kernel of its own: its first launch compiles
        i = tw.bid(0)
        tw.store(c, index=(i,), tile=tw.load(a, index=(i,), shape=(T,)) * tw.load(b, index=(i,), shape=(T,)))

    with profiler.profile() as prof:
        with profiler.range("step"):
            tw.launch(None, (4,), fresh, (a, a, c, 32))
    path = prof.export_chrome_trace(tmp_path / "trace.json")
    events = json.loads(path.read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["cat"] for e in spans} == {"launch", "compile", "range"}
    for e in spans:
        assert isinstance(e["ts"], float | int) and e["dur"] >= 0 and e["name"]
    (launch,) = [e for e in spans if e["cat"] == "launch"]
    assert launch["args"]["grid"] == [4, 1, 1] and launch["args"]["bytes"] == 1200
    assert launch["args"]["flops"] == 100
    rng = next(e for e in spans if e["cat"] == "range")
    assert rng["ts"] <= launch["ts"] and launch["ts"] + launch["dur"] <= rng["ts"] + rng["dur"] + 1
    assert "step" in prof.table()


def test_roofline_png(tmp_path):
    pytest.importorskip("matplotlib")
    a = np.ones(4096, np.float32)
    c = np.empty_like(a)
    with profiler.profile() as prof:
        tw.launch(None, (4,), vadd, (a, a, c, 1024))
    path = prof.roofline(tmp_path / "roof.png", peaks={"gbps": 20.0, "gflops": 200.0})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert prof.kernels(peaks={"gbps": 20.0, "gflops": 200.0})[0].peak_pct > 0


def test_no_profile_takes_the_plain_path(monkeypatch):
    assert not launch_module._listeners
    monkeypatch.setattr(launch_module, "_launch_observed", lambda *a: pytest.fail("observed without a profile"))
    a = np.ones(64, np.float32)
    c = np.empty_like(a)
    tw.launch(None, (1,), vadd, (a, a, c, 64))
    assert (c == 2).all()


@pytest.mark.parametrize("raw, shown", [
    ("numpy_fused_multiply_add_sin", "numpy.fused[multiply,add,sin]"),
    ("numpy_sum_multiply_add", "numpy.sum[multiply,add]"),
    ("numpy_fused_floor_divide_subtract", "numpy.fused[floor_divide,subtract]"),
    ("math_matmul_GELU_BIAS", "math.matmul[GELU_BIAS]"),
    ("vadd", "vadd"),
])
def test_display_names(raw, shown):
    assert display_name(raw) == shown


def test_counting_without_launching():
    n = 1000
    a = np.ones(n, np.float32)
    c = tw.compile(vadd, (a, a, a.copy(), 128), target="reference")
    got = count(c.function, sizes_of(c.function, (a, a, a)), (8, 1, 1))
    assert (got.bytes, got.flops, got.exact) == (12 * n, n, True)


def test_cli_profiles_a_script(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(
        "import sys\nimport numpy as np\nimport tilewise as tw\n\n"
        "@tw.kernel\ndef double(x, y, T: tw.Constant[int]):\n"
        "    i = tw.bid(0)\n    tw.store(y, index=(i,), tile=tw.load(x, index=(i,), shape=(T,)) * 2)\n\n"
        "x = np.ones(int(sys.argv[1]), np.float32)\ny = np.empty_like(x)\n"
        "tw.launch(None, (tw.cdiv(x.size, 64),), double, (x, y, 64))\nprint('done', y.sum())\n")
    trace = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "tilewise", "profile", str(script), "100", "--trace", str(trace)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "done 200.0" in r.stdout and "double" in r.stdout and "launches" in r.stdout
    assert json.loads(trace.read_text())["traceEvents"]


def test_a_dynamic_extract_is_counted(backend):
    """A sub-tile taken at a runtime index (cuTile's persistent RMS norm) is counted as far as the tile
    reaches, and the launch is profiled (it used to raise inside the counter)."""
    @tw.kernel
    def pick(x, y, T: tw.Constant[int]):
        t = tw.load(x, index=(0,), shape=(4 * T,))
        for j in range(4):
            tw.store(y, index=(j,), tile=t.extract((j,), (T,)) * 2)
    x = np.arange(32, dtype=np.float32)
    y = np.zeros_like(x)
    with profiler.profile() as prof:
        tw.launch(None, (1,), pick, (x, y, 8))
    np.testing.assert_array_equal(y, x * 2)
    (rec,) = prof.kernels()
    assert rec.launches == 1 and rec.bytes >= 2 * x.nbytes
