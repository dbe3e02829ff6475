"""Vector add of 2**24 float32 on a tilewise host backend vs NumPy's `a + b`, in one process.

    python benchmarks/vector_add.py [--n 16777216] [--tile 4096] [--repeats 15]

Both sides write into a preallocated output (`np.add(a, b, out=c)` for NumPy) so neither pays for
allocating 64 MiB; repeats are interleaved so drift in clock speed or cache state hits both alike.
The figure is the ratio of throughputs, tilewise / NumPy (the target is >= 0.33x).
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tilewise as tw
from tilewise import backends

TARGET = 0.33


@tw.kernel
def vector_add(a, b, c, TILE: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(TILE,))
    y = tw.load(b, index=(tw.bid(0),), shape=(TILE,))
    tw.store(c, index=(tw.bid(0),), tile=x + y)


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2**24)
    p.add_argument("--tile", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)

    rng = np.random.default_rng(0)
    a = rng.standard_normal(args.n).astype(np.float32)
    b = rng.standard_normal(args.n).astype(np.float32)
    c_tw, c_np = np.empty_like(a), np.empty_like(a)
    grid = (tw.cdiv(args.n, args.tile),)
    run_tw = lambda: tw.launch(None, grid, vector_add, (a, b, c_tw, args.tile))
    run_np = lambda: np.add(a, b, out=c_np)

    for _ in range(3):  # warm-up: JIT, page faults on the outputs, caches
        run_tw()
        run_np()
    np.testing.assert_array_equal(c_tw, c_np)

    t_tw, t_np = [], []
    for _ in range(args.repeats):
        t_tw.append(_time(run_tw))
        t_np.append(_time(run_np))
    med_tw, med_np = statistics.median(t_tw), statistics.median(t_np)
    moved = 3 * a.nbytes  # two reads and one write
    ratio = med_np / med_tw
    print(f"vector add, n={args.n} float32, tile={args.tile}, backend={backends.host_backend_name()}")
    print(f"  numpy     {med_np * 1e3:8.2f} ms  {moved / med_np / 1e9:6.2f} GB/s")
    print(f"  tilewise  {med_tw * 1e3:8.2f} ms  {moved / med_tw / 1e9:6.2f} GB/s")
    print(f"  ratio     {ratio:.2f}x NumPy's throughput (target >= {TARGET}x: "
          f"{'met' if ratio >= TARGET else 'NOT met'})")
    return ratio


if __name__ == "__main__":
    main()
