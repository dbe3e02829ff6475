"""What every benchmark script shares: interleaved timing and a one-line description of the machine."""
from __future__ import annotations

import os
import statistics
import time

# Peers' thread pools must not spin after a call: a spinning pool takes cores from whatever runs next in
# an interleaved round (measured: tilewise softmax 7.5 ms right after numba's OpenMP pool, 4.1 ms with
# OMP_WAIT_POLICY=PASSIVE, numba's own time unchanged). numba loads OpenMP after this module is imported;
# OpenBLAS reads its setting when NumPy loads, so cpu_matmul.py sets it first thing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def interleaved_medians(fns, repeat, warmup=2):
    """Median seconds of each function, after `warmup` untimed rounds, running them in turn so that
    machine noise hits all of them alike."""
    for _ in range(warmup):
        for f in fns:
            f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def sweep(name, values, launcher, prepare, check, repeat):
    """Tune one kernel parameter: for each value, `prepare()` the output, launch once (compiling, or
    loading from the disk cache), `check(value)` the result; then time the values interleaved and print
    the sweep. Returns the fastest value and its launch function."""
    runs, first = {}, {}
    for v in values:
        prepare()
        t = time.perf_counter()
        launcher(v)()
        first[v] = time.perf_counter() - t
        check(v)
        runs[v] = launcher(v)
    medians = dict(zip(runs, interleaved_medians(list(runs.values()), repeat)))
    if len(medians) > 1:
        print(f"  {name} sweep: " + ", ".join(f"{name}={v} {s * 1e3:.2f} ms (first launch {first[v]:.2f}s)"
                                              for v, s in medians.items()))
    best = min(medians, key=medians.get)
    return best, runs[best]


def machine():
    """CPU model and core count, for quoting a figure with where it was measured."""
    from tilewise.profiler.peaks import cpu_model
    return f"{cpu_model()}, {os.cpu_count()} cores"


def use_backend(name="cpu"):
    """Run launches on host backend `name` (the scripts measure the native backend by default, which
    is not yet the library default); registers the cpu backend if TILEWISE_ENABLE_CPU=0 left it out."""
    from tilewise import backends

    if name == "cpu" and "cpu" not in backends.available():
        backends.register("cpu", backends._cpu)
    os.environ["TILEWISE_BACKEND"] = name
    return name


def threads():
    """The thread count the tilewise pool (and numba, set to match) use."""
    return int(os.environ.get("TILEWISE_NUM_THREADS") or os.cpu_count() or 1)


def numba_module():
    """numba set to the tilewise thread count, or None when it is not installed (`pip install .[bench]`)."""
    try:
        import numba
    except ImportError:
        return None
    numba.set_num_threads(min(threads(), numba.config.NUMBA_NUM_THREADS))
    return numba


def numexpr_module():
    try:
        import numexpr
    except ImportError:
        return None
    numexpr.set_num_threads(threads())
    return numexpr


_BANDWIDTH = {}


def memory_bandwidth(nbytes, repeat=10):
    """Fastest streaming rate in GB/s (bytes read + bytes written, per second) over buffers of `nbytes`,
    and which probe gave it: a single-threaded np.copyto, np.add(a, b, out=c), and a numba copy on all
    threads when numba is installed (one core may not saturate the memory system). The size matters:
    buffers that fit the L3 cache stream faster than ones that must go to DRAM."""
    key = (nbytes, threads())
    if key in _BANDWIDTH:
        return _BANDWIDTH[key]
    import numpy as np

    n = max(1, nbytes // 4)
    src, src2 = np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    dst = np.empty_like(src)
    mib = f"{nbytes / 2**20:.3g} MiB"
    probes = {f"np.copyto, 1 thread, {mib}": (lambda: np.copyto(dst, src), 2 * src.nbytes),
              f"np.add(out=), 1 thread, {mib}": (lambda: np.add(src, src2, out=dst), 3 * src.nbytes)}
    nb = numba_module()
    if nb is not None:
        @nb.njit(parallel=True)
        def par_copy(d, s):
            for i in nb.prange(s.shape[0]):
                d[i] = s[i]
        probes[f"numba copy, {threads()} threads, {mib}"] = (lambda: par_copy(dst, src), 2 * src.nbytes)
    for f, _ in probes.values():
        f()
    best = {name: float("inf") for name in probes}
    for _ in range(repeat):  # the fastest run, not the median: this is a ceiling, and noise only slows
        for name, (f, _) in probes.items():
            t = time.perf_counter()
            f()
            best[name] = min(best[name], time.perf_counter() - t)
    rates = {name: moved / best[name] / 1e9 for name, (_, moved) in probes.items()}
    top = max(rates, key=rates.get)
    _BANDWIDTH[key] = (rates[top], top)
    return _BANDWIDTH[key]


def memory_limit(moved_bytes, seconds, working_set_bytes=None, otherwise="compute-bound"):
    """'bytes moved / time vs the measured bandwidth' as a phrase for the limit column. A kernel that
    streams at 60% or more of the probe's rate is called memory-bound; below that, `otherwise` (the
    script's own diagnosis, e.g. "compute-bound (scalar exp)") names what holds it back."""
    bw, how = memory_bandwidth(working_set_bytes or moved_bytes // 2)
    got = moved_bytes / seconds / 1e9
    bound = "memory-bound" if got >= 0.6 * bw else otherwise
    print(f"  bandwidth probe: {bw:.1f} GB/s ({how})")
    return (f"{bound}: {moved_bytes / 1e6:.3g} MB at {got:.1f} GB/s = {got / bw:.0%} of {bw:.0f} GB/s measured "
            f"(floor {moved_bytes / bw / 1e6:.2g} ms)")


def libm_calls(llvm_ir):
    """Math intrinsics and libm functions the optimised LLVM IR still calls. On x86 LLVM has no vector
    math library to hand, so each `llvm.exp.v8f32` becomes eight scalar `expf` calls: a kernel with
    any of these runs its math one element at a time."""
    import re

    pattern = r"call [^@\n]*@((?:llvm\.)?(?:exp2?|log(?:2|10|1p)?|expm1|sin|cos|tan|tanh|erf|pow)f?(?:\.[\w]+)*)\("
    return sorted(set(re.findall(pattern, llvm_ir)))


def math_diagnosis(kernel, args, bound="compute-bound"):
    """'<bound> (...)' for a compiled cpu kernel: whether its math is scalar libm calls, and how
    many tile-sized buffers its ops still pass through (each is a pass over the tile instead of one
    fused loop)."""
    import re

    import tilewise as tw
    from tilewise import backends

    if backends.host_backend_name() != "cpu":
        return f"{bound} (the {backends.host_backend_name()} backend)"
    try:
        code = tw.compile(kernel, args, target="cpu").code or ""
    except Exception as e:  # a diagnosis must not sink the benchmark
        return f"{bound} (IR not inspected: {type(e).__name__})"
    notes = []
    calls = libm_calls(code)
    if calls:
        notes.append(f"scalar libm math: IR calls {', '.join(calls)}")
    buffers = [int(n) for n in re.findall(r"alloca \[(\d+) x ", code) if int(n) >= 256]
    if buffers:
        notes.append(f"{len(buffers)} tile buffers on the stack")
    return f"{bound} ({'; '.join(notes) or 'no libm calls, no tile buffers'})"


def verdict(ratio, target):
    return "met" if ratio >= target else "NOT met"


def emit_result(kernel, tilewise_s, baseline, baseline_s, target, numba_s=None, limit="", peers=None):
    """One machine-readable line that benchmarks/run_all.py collects into its table (times in seconds;
    numba_s None when numba is not installed; peers: other {name: seconds} worth a mention, e.g. numexpr
    or numba with fastmath)."""
    import json

    row = {"kernel": kernel, "tilewise_ms": tilewise_s * 1e3, "baseline": baseline, "baseline_ms": baseline_s * 1e3,
           "ratio": baseline_s / tilewise_s, "target": target,
           "numba_ms": None if numba_s is None else numba_s * 1e3,
           "peers_ms": {k: v * 1e3 for k, v in (peers or {}).items()}, "limit": limit}
    print("RESULT " + json.dumps(row))


def row_kernel_args(doc, tm_sweep, argv=None):
    """The command line of the row benchmarks (softmax, layer norm): matrix size, the TM sweep, repeats
    and backend."""
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--tm", default=",".join(map(str, tm_sweep)), help="rows per block; a comma list is swept")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--backend", default="cpu")
    a = p.parse_args(argv)
    a.tm = [int(t) for t in a.tm.split(",")]
    return a


def numba_contenders(make, call, check):
    """[(label, fn)] for numba parallel and numba parallel fastmath, each run once and its output
    checked first (check(label, out) raises when it is off); [] without numba. `make(fastmath)` builds
    the jitted function, `call(f)` runs it and returns its output."""
    if numba_module() is None:
        return []
    out = []
    for label, fastmath in (("numba parallel", False), ("numba fastmath", True)):
        f = make(fastmath)
        check(label, call(f))
        out.append((label, lambda f=f: call(f)))
    return out


def compare(kernel, baseline, contenders, repeat, target, limit):
    """Time `contenders` ([(name, fn)]: tilewise first, the baseline second, then numba's) interleaved,
    print the table, the verdict and `limit(tilewise seconds)`, and emit the RESULT line. Returns
    tilewise's speed-up over the baseline."""
    names, fns = zip(*contenders)
    times = interleaved_medians(list(fns), repeat)
    for name, s in zip(names, times):
        print(f"  {name:<22} {s * 1e3:8.2f} ms  {times[1] / s:5.2f}x {names[1]}")
    if len(times) == 2:
        print("  numba not installed (pip install -e '.[bench]'): skipped")
    ratio = times[1] / times[0]
    lim = limit(times[0])
    print(f"  ratio {ratio:.2f}x {baseline} (target >= {target}x: {verdict(ratio, target)})")
    print(f"  limit: {lim}")
    peers = dict(zip(names[2:], times[2:]))
    numba = peers.pop("numba parallel", None)
    emit_result(kernel, times[0], baseline, times[1], target, numba, lim,
                peers={k.removeprefix("numba "): v for k, v in peers.items()} or None)
    return ratio
