"""1024^3 float32 matmul: a tilewise tile kernel on the cpu backend against numpy.matmul (OpenBLAS) and,
when numba is importable, a numba @njit(parallel=True) blocked matmul, all in one process with the
same thread count. Prints medians of interleaved runs, GFLOP/s, the ratio to NumPy, and the machine's
nominal fp32 peak (cores x 2 FMA units x 8 lanes x 2 flops x clock) for context.

Sweeps the tile shape first (TMxTNxTK; wide TN gives each block more work per copied A tile) and
times the fastest.

    python benchmarks/cpu_matmul.py [--n 1024] [--tiles 128x128x64,128x256x128] [--repeat 7]
"""
from __future__ import annotations

import os
import sys

# OpenBLAS reads its thread count when NumPy loads: give it the one the tilewise pool uses
_THREADS = os.environ.get("TILEWISE_NUM_THREADS") or str(os.cpu_count() or 1)
os.environ.setdefault("OPENBLAS_NUM_THREADS", _THREADS)
# and let its threads sleep at once after a call: spinning (about 0.1 s by default) they took the cores
# from the next call of an interleaved round (tilewise's matmul: 31.9 ms after numpy.matmul, 18.0 without)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import tilewise as tw  # noqa: E402
from tilewise import backends  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from common import interleaved_medians, machine, sweep  # noqa: E402
from matmul import matmul  # noqa: E402  (the tile kernel of examples/matmul.py)

TILE_SWEEP = ("128x128x64", "128x128x128", "192x128x128", "128x256x128", "64x256x256", "64x512x128")


def numba_matmul():
    """A blocked numba matmul (parallel over row blocks), or None when numba is not installed."""
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, fastmath=True, cache=False)
    def mm(a, b, c):
        m, k = a.shape
        n = b.shape[1]
        bs, bk = 64, 256
        for ib in numba.prange((m + bs - 1) // bs):
            i0 = ib * bs
            i1 = min(i0 + bs, m)
            for i in range(i0, i1):
                for j in range(n):
                    c[i, j] = 0.0
            for k0 in range(0, k, bk):
                k1 = min(k0 + bk, k)
                for i in range(i0, i1):
                    for kk in range(k0, k1):
                        s = a[i, kk]
                        for j in range(n):  # contiguous inner loop: numba vectorises it
                            c[i, j] += s * b[kk, j]
    numba.set_num_threads(int(_THREADS))
    return mm


def clock_ghz():
    try:
        with open("/proc/cpuinfo") as f:
            return max(float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")) / 1e3
    except (OSError, ValueError):
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--tiles", default=",".join(TILE_SWEEP), help="TMxTNxTK tile shapes; a comma list is swept")
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args(argv)
    if "cpu" not in backends.available():
        backends.register("cpu", backends._cpu)
    os.environ["TILEWISE_BACKEND"] = "cpu"
    n = a.n
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n)).astype(np.float32)
    y = rng.standard_normal((n, n)).astype(np.float32)
    c = np.empty((n, n), np.float32)
    want = x.astype(np.float64) @ y.astype(np.float64)
    errors, compile_s = {}, {}

    def launcher(tiles):
        tm, tn, tk = map(int, tiles.split("x"))
        grid, args = (tw.cdiv(n, tm), tw.cdiv(n, tn), 1), (x, y, c, tm, tn, tk)
        if tiles not in compile_s:
            t = time.perf_counter()
            tw.compile(matmul, args, target="cpu")
            compile_s[tiles] = time.perf_counter() - t
        return lambda: tw.launch(None, grid, matmul, args)

    def check(tiles):
        errors[tiles] = err = float(np.max(np.abs(c - want)) / np.max(np.abs(want)))
        assert err < 1e-5, f"tilewise matmul with tiles {tiles} is off by {err:.1e}"
    tiles, run = sweep("tiles", a.tiles.split(","), launcher, lambda: c.fill(np.nan), check, a.repeat)
    err = errors[tiles]

    fns = [run, lambda: np.matmul(x, y)]
    names = ["tilewise cpu", "numpy.matmul"]
    nb = numba_matmul()
    if nb is not None:
        cn = np.empty_like(c)
        t = time.perf_counter()
        nb(x, y, cn)
        numba_compile = time.perf_counter() - t
        assert np.allclose(cn, want, rtol=1e-3, atol=1e-3), "numba matmul disagrees"
    if nb is not None:
        fns.append(lambda: nb(x, y, cn))
        names.append("numba njit")
    times = interleaved_medians(fns, a.repeat)

    flops = 2.0 * n ** 3
    print(f"matmul {n}x{n}x{n} f32, tiles {tiles}, {_THREADS} threads; {machine()}")
    print(f"  tilewise compile {compile_s[tiles]:.2f}s, max rel err {err:.1e}"
          + (f"; numba compile {numba_compile:.2f}s" if nb is not None else "; numba not installed: skipped"))
    for name, s in zip(names, times):
        print(f"  {name:<13} {s * 1e3:9.2f} ms  {flops / s / 1e9:7.1f} GFLOP/s")
    print(f"  tilewise / numpy throughput: {times[1] / times[0]:.2f}x")
    ghz = clock_ghz()
    if ghz:
        cores = os.cpu_count() or 1
        print(f"  nominal peak: {cores} cores x 2 FMA x 8 lanes x 2 x {ghz:.2f} GHz = {cores * 32 * ghz:.0f} GFLOP/s")
    return times[1] / times[0]


if __name__ == "__main__":
    main()
