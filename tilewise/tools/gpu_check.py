"""The GPU validation kit: `python -m tilewise.tools.gpu_check` on a machine with an NVIDIA GPU.

1. prints the device, driver and library versions;
2. runs the kernel test suite on the `cuda` backend (pytest with TILEWISE_TEST_BACKENDS=cuda: host
   arrays are copied to the GPU, run there and copied back);
3. times vector add, softmax, layer norm, matmul (fp16, bf16, tf32; 4096^3) and flash attention on
   device arrays, checks each result against NumPy, and compares with the device-to-device copy
   bandwidth and with PyTorch, CuPy and Triton where importable (the Triton kernels are ours, in
   tilewise/tools/gpu_peers_triton.py, imported only if Triton is; their results are checked against the
   same reference and a wrong one shows as an error in its cell, never as a time);
4. prints a markdown block for docs/gpu-results.md (and writes it with --out).

Without a GPU it exits with status 2 and says so. `--emulate` runs a tiny version on the emulated
device (TILEWISE_EMULATE_GPU=1), so CI tests the kit itself; its times mean nothing."""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]  # the source checkout: tests/ and examples/
FULL = {"vector_add": 1 << 26, "rows": (16384, 4096), "matmul": 4096, "attention": (16, 4096, 64)}
TINY = {"vector_add": 3000, "rows": (8, 300), "matmul": 64, "attention": (2, 64, 32)}
TOLERANCE = 0.1  # largest max error (relative for matmul) a result may have and still count as right


def _example(name):
    path = ROOT / "examples" / f"{name}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"tw_example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _time_ms(tw, dev, fn, reps):
    """Mean milliseconds per call over `reps` calls on the default stream, after one warm-up call."""
    fn()
    s = dev.default_stream
    start = s.record()
    for _ in range(reps):
        fn()
    end = s.record()
    return start.elapsed_time(end) / reps


def _peer_ms(fn, reps):
    """Mean ms of a PyTorch call (CUDA events), or None without PyTorch on a GPU."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
    except ImportError:
        return None
    fn()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        fn()
    b.record()
    b.synchronize()
    return a.elapsed_time(b) / reps


def _cupy_ms(fn, reps):
    try:
        import cupy
        from cupyx.profiler import benchmark
    except ImportError:
        return None
    del cupy
    return float(np.mean(benchmark(fn, n_repeat=reps, n_warmup=1).gpu_times)) * 1e3


def triton_peers():
    """tilewise.tools.gpu_peers_triton, or None where Triton (or PyTorch on a GPU) is not importable."""
    try:
        import torch
        if not torch.cuda.is_available():
            return None
        from tilewise.tools import gpu_peers_triton
    except Exception as e:  # ImportError without Triton; a broken install must not stop the kit either
        if not isinstance(e, ImportError):
            print(f"gpu_check: Triton peers unavailable: {e!r}", file=sys.stderr)
        return None
    return gpu_peers_triton


def _triton_cell(name, run, error, reps):
    """The Triton column for one row: ms if `run` gives a result within TOLERANCE by `error` (the
    same measure as tilewise's), else a short error text for the table (details on stderr)."""
    try:
        err = error(run())
    except Exception as e:  # a peer that fails to compile or launch must not stop the kit
        print(f"gpu_check: Triton {name} failed: {e!r}", file=sys.stderr)
        return f"error: {type(e).__name__}"
    if not np.isfinite(err) or err > TOLERANCE:
        print(f"gpu_check: Triton {name} gave a wrong result (max error {err:.1e})", file=sys.stderr)
        return f"wrong: error {err:.1e}"
    return _peer_ms(run, reps)


def copy_bandwidth(tw, dev, nbytes, reps):
    """Device-to-device copy GB/s (read + write), the roof for the bandwidth-bound kernels."""
    src, dst = tw.empty(nbytes, np.uint8, dev), tw.empty(nbytes, np.uint8, dev)
    stream = dev.driver.default_stream()
    ms = _time_ms(tw, dev, lambda: dev.driver.copy_d2d(dst.ptr, src.ptr, nbytes, stream), reps)
    return 2 * nbytes / ms / 1e6


def benchmarks(tw, dev, sizes, reps):
    """Rows of (name, size text, ms, amount, unit, max error, torch ms, cupy ms, triton ms or error text)."""
    rng = np.random.default_rng(0)
    rows = []
    torch = None
    try:
        import torch as _torch
        torch = _torch if _torch.cuda.is_available() else None
    except ImportError:
        pass
    cupy = None
    try:
        import cupy as _cupy
        cupy = _cupy
    except ImportError:
        pass
    tri = triton_peers() if torch is not None else None
    host = (lambda t: t.float().cpu().numpy())

    ex = _example("vector_add")
    if ex:
        n = sizes["vector_add"]
        a, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
        da, db, dc = tw.to_device(a, dev), tw.to_device(b, dev), tw.empty(n, np.float32, dev)
        ms = _time_ms(tw, dev, lambda: tw.launch(None, (tw.cdiv(n, 1024),), ex.vector_add, (da, db, dc, 1024)), reps)
        err = float(np.max(np.abs(dc.to_host() - (a + b))))
        ta = tb = None
        if torch is not None:
            ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
        ca = cupy.asarray(a) if cupy is not None else None
        tri_ms = None
        if tri is not None:
            tc = torch.empty_like(ta)
            tri_ms = _triton_cell("vector add", lambda: tri.run_vector_add(ta, tb, out=tc),
                                  lambda t: float(np.max(np.abs(host(t) - (a + b)))), reps)
        rows.append(("vector add fp32", f"{n:,}", ms, 12 * n, "GB/s", err,
                     _peer_ms(lambda: ta + tb, reps) if ta is not None else None,
                     _cupy_ms(lambda: ca + ca, reps) if ca is not None else None, tri_ms))

    m, n = sizes["rows"]
    x = rng.standard_normal((m, n), dtype=np.float32)
    tx = torch.as_tensor(x, device="cuda") if torch is not None else None
    ex = _example("softmax")
    if ex:
        dx, dy = tw.to_device(x, dev), tw.empty((m, n), np.float32, dev)
        tn = 1 << (n - 1).bit_length()
        ms = _time_ms(tw, dev, lambda: tw.launch(None, (tw.cdiv(m, 1),), ex.softmax, (dx, dy, 1, tn)), reps)
        ref = ex.reference(x)
        err = float(np.max(np.abs(dy.to_host() - ref)))
        tri_ms = None
        if tri is not None:
            ty = torch.empty_like(tx)
            tri_ms = _triton_cell("softmax", lambda: tri.run_softmax(tx, out=ty),
                                  lambda t: float(np.max(np.abs(host(t) - ref))), reps)
        rows.append(("softmax fp32", f"{m}x{n}", ms, 8 * m * n, "GB/s", err,
                     _peer_ms(lambda: torch.softmax(tx, 1), reps) if tx is not None else None, None, tri_ms))
    ex = _example("layer_norm")
    if ex:
        w, b = rng.standard_normal(n, dtype=np.float32), rng.standard_normal(n, dtype=np.float32)
        dx, dw, db = tw.to_device(x, dev), tw.to_device(w, dev), tw.to_device(b, dev)
        dy = tw.empty((m, n), np.float32, dev)
        ms = _time_ms(tw, dev, lambda: tw.launch(None, (m,), ex.layer_norm, (dx, dw, db, dy, 1e-5, 1024)), reps)
        ref = ex.reference(x, w, b, 1e-5)
        err = float(np.max(np.abs(dy.to_host() - ref)))
        peer = tri_ms = None
        if tx is not None:
            import torch.nn.functional as F  # noqa: N812
            tw_, tb_ = torch.as_tensor(w, device="cuda"), torch.as_tensor(b, device="cuda")
            peer = _peer_ms(lambda: F.layer_norm(tx, (n,), tw_, tb_, 1e-5), reps)
            if tri is not None:
                ty = torch.empty_like(tx)
                tri_ms = _triton_cell("layer norm", lambda: tri.run_layer_norm(tx, tw_, tb_, 1e-5, out=ty),
                                      lambda t: float(np.max(np.abs(host(t) - ref))), reps)
        rows.append(("layer norm fp32", f"{m}x{n}", ms, 8 * m * n, "GB/s", err, peer, None, tri_ms))

    ex = _example("matmul")
    if ex:
        import ml_dtypes
        k = sizes["matmul"]
        for label, dtype, tdt in [("fp16", np.float16, "float16"), ("bf16", ml_dtypes.bfloat16, "bfloat16"),
                                  ("tf32", np.float32, "float32")]:
            a = rng.standard_normal((k, k)).astype(dtype)
            b = rng.standard_normal((k, k)).astype(dtype)
            da, db, dc = tw.to_device(a, dev), tw.to_device(b, dev), tw.empty((k, k), np.float32, dev)
            args = (da, db, dc, 64, 64, 32)
            ms = _time_ms(tw, dev, lambda args=args: tw.launch(None, (tw.cdiv(k, 64), tw.cdiv(k, 64)), ex.matmul,
                                                               args), max(1, reps // 4))
            sub = slice(0, 256)  # check a corner: a float64 4096^3 product on the host takes too long
            ref = a[sub].astype(np.float64) @ b[:, sub].astype(np.float64)
            rel = (lambda c, ref=ref, sub=sub: float(np.max(np.abs(c[sub, sub] - ref)) / max(1.0, np.max(np.abs(ref)))))
            err = rel(dc.to_host())
            peer = tri_ms = None
            if torch is not None:
                torch.backends.cuda.matmul.allow_tf32 = True
                ta = torch.as_tensor(a.astype(np.float32), device="cuda").to(getattr(torch, tdt))
                tb = torch.as_tensor(b.astype(np.float32), device="cuda").to(getattr(torch, tdt))
                peer = _peer_ms(lambda ta=ta, tb=tb: ta @ tb, max(1, reps // 4))
                if tri is not None:
                    tc = torch.empty((k, k), dtype=torch.float32, device="cuda")
                    tri_ms = _triton_cell(f"matmul {label}", lambda ta=ta, tb=tb, tc=tc: tri.run_matmul(ta, tb, out=tc),
                                          lambda t, rel=rel: rel(host(t)), max(1, reps // 4))
            rows.append((f"matmul {label}", f"{k}^3", ms, 2 * k ** 3, "TFLOP/s", err, peer, None, tri_ms))

    ex = _example("flash_attention")
    if ex:
        bh, s, d = sizes["attention"]
        q, kk, v = (rng.standard_normal((bh, s, d)).astype(np.float16) for _ in range(3))
        dq, dk, dv, do = (*(tw.to_device(t, dev) for t in (q, kk, v)), tw.empty((bh, s, d), np.float32, dev))
        scale = float(1 / np.sqrt(d))
        ms = _time_ms(tw, dev, lambda: tw.launch(None, (tw.cdiv(s, 64), bh), ex.flash_attention,
                                                 (dq, dk, dv, do, scale, d, 64, 64, False)), max(1, reps // 4))
        ref = ex.reference(q[:1], kk[:1], v[:1], scale, False)  # one (batch, head): the rest costs host time
        err = float(np.max(np.abs(do.to_host()[:1] - ref)))
        peer = tri_ms = None
        if torch is not None:
            import torch.nn.functional as F  # noqa: N812
            tq, tk, tv = (torch.as_tensor(t, device="cuda")[None] for t in (q, kk, v))
            peer = _peer_ms(lambda: F.scaled_dot_product_attention(tq, tk, tv), max(1, reps // 4))
            if tri is not None:
                to = torch.empty((bh, s, d), dtype=torch.float32, device="cuda")
                tri_ms = _triton_cell("flash attention", lambda: tri.run_attention(tq[0], tk[0], tv[0], scale, out=to),
                                      lambda t: float(np.max(np.abs(host(t)[:1] - ref))), max(1, reps // 4))
        rows.append(("flash attention fp16", f"{bh}x{s}x{d}", ms, 4 * bh * s * s * d, "TFLOP/s", err, peer, None,
                     tri_ms))
    return rows


def run_tests(timeout, pattern):
    """The shared kernel suite on the `cuda` backend; returns pytest's last line."""
    tests = ROOT / "tests"
    if not tests.exists():
        return "skipped: no tests/ next to the package (run from a source checkout)"
    env = dict(os.environ, TILEWISE_TEST_BACKENDS="cuda", TILEWISE_BACKEND="cuda")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
    cmd += ["-k", pattern] if pattern else []
    try:
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout} s"
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    failed = [ln for ln in lines if ln.startswith("FAILED")]
    return "\n".join(failed[:30] + lines[-1:])


def report(info, tests, bandwidth, rows):
    date = datetime.date.today().isoformat()
    out = [f"### {date}: {info.get('name')}, {info.get('arch')}, {info.get('driver')}", "",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("name", "arch", "driver")), "",
           f"Kernel suite on the `cuda` backend: {tests}", "",
           f"Device-to-device copy: {bandwidth:.0f} GB/s", "",
           "| kernel | size | tilewise ms | achieved | % of copy | max error | PyTorch ms | PyTorch / tilewise "
           "| CuPy ms | Triton ms | Triton / tilewise |",
           "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, size, ms, amount, unit, err, torch_ms, cupy_ms, *rest in rows:
        # Triton: ms, None (not installed, or no such kernel) or the text of why its result was rejected
        triton_ms = rest[0] if rest else None
        if isinstance(triton_ms, str):
            tri, tri_ratio = triton_ms, "—"
        elif triton_ms:
            tri, tri_ratio = f"{triton_ms:.3f}", f"{triton_ms / ms:.2f}x"
        else:
            tri = tri_ratio = "—"
        rate = amount / ms / (1e6 if unit == "GB/s" else 1e9)
        pct = f"{100 * rate / bandwidth:.0f}%" if unit == "GB/s" else ""
        fmt = (lambda v: f"{v:.3f}" if v is not None else "n/a")
        ratio = f"{torch_ms / ms:.2f}x" if torch_ms else "n/a"
        out.append(f"| {name} | {size} | {ms:.3f} | {rate:.1f} {unit} | {pct} | {err:.1e} | {fmt(torch_ms)} | "
                   f"{ratio} | {fmt(cupy_ms)} | {tri} | {tri_ratio} |")
    out.append("")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m tilewise.tools.gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--emulate", action="store_true", help="tiny run on the emulated device (tests the kit)")
    p.add_argument("--no-tests", action="store_true", help="skip the kernel test suite")
    p.add_argument("-k", dest="pattern", help="only tests matching this pytest -k expression")
    p.add_argument("--test-timeout", type=int, default=420)
    p.add_argument("--reps", type=int, default=None)
    p.add_argument("--out", help="also write the markdown block to this file")
    args = p.parse_args(argv)
    if args.emulate:
        os.environ["TILEWISE_EMULATE_GPU"] = "1"
        os.environ.setdefault("TILEWISE_EMULATOR_THREADS", "32")
    import tilewise as tw
    devs = tw.devices()
    if not devs:
        try:
            tw.Device()
        except tw.TileError as e:
            print(f"gpu_check: no GPU to check: {e}", file=sys.stderr)
        print("gpu_check: run it on a machine with an NVIDIA GPU and driver, or pass --emulate for a smoke "
              "run on the emulated device", file=sys.stderr)
        return 2
    dev = devs[0]
    info = dev.info()
    peers = triton_peers()
    if peers is not None:
        info["triton"] = peers.triton.__version__
    print("device:", ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    t = time.perf_counter()
    tests = "skipped" if args.no_tests else run_tests(args.test_timeout, args.pattern)
    print(f"tests ({time.perf_counter() - t:.0f} s): {tests}", flush=True)
    reps = args.reps or (2 if args.emulate else 20)
    bandwidth = copy_bandwidth(tw, dev, (1 << 20) if args.emulate else (1 << 30), reps)
    rows = benchmarks(tw, dev, TINY if args.emulate else FULL, reps)
    block = report(info, tests, bandwidth, rows)
    print(block)
    if args.out:
        Path(args.out).write_text(block)
    bad = [r[0] for r in rows if not np.isfinite(r[5]) or r[5] > TOLERANCE]
    if bad:
        print(f"gpu_check: wrong results from {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
