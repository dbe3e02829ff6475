"""Row softmax of a 4096 x 1024 float32 matrix: the cpu backend against NumPy (and the reference
backend, once, for the answer). Prints the median of interleaved runs, after a warm-up, and the ratio.

    python benchmarks/cpu_softmax.py [--rows 4096] [--cols 1024] [--tm 4]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import tilewise as tw
from tilewise import backends


@tw.kernel
def softmax(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    e = tw.exp(rows - tw.max(rows, axis=1, keepdims=True))
    tw.store(y, index=(tw.bid(0), 0), tile=e / tw.sum(e, axis=1, keepdims=True))


def numpy_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def interleaved_medians(fns, repeat):
    """Median time of each function, running them in turn so machine noise hits all alike."""
    times = [[] for _ in fns]
    for _ in range(repeat):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--tm", type=int, default=4)
    p.add_argument("--repeat", type=int, default=10)
    a = p.parse_args()
    if "cpu" not in backends.available():
        backends.register("cpu", backends._cpu)
    os.environ["TILEWISE_BACKEND"] = "cpu"
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((a.rows, a.cols)) * 3).astype(np.float32)
    y = np.empty_like(x)
    tn = 1 << (a.cols - 1).bit_length()
    grid = (tw.cdiv(a.rows, a.tm), 1, 1)
    args = (x, y, a.tm, tn)
    t = time.perf_counter()
    tw.compile(softmax, args, target="cpu")
    compile_s = time.perf_counter() - t
    tw.launch(None, grid, softmax, args)
    want = numpy_softmax(x.astype(np.float64))
    err = float(np.max(np.abs(y - want)))
    numpy_softmax(x)
    t_cpu, t_np = interleaved_medians([lambda: tw.launch(None, grid, softmax, args), lambda: numpy_softmax(x)],
                                      a.repeat)
    threads = os.environ.get("TILEWISE_NUM_THREADS") or os.cpu_count()
    print(f"softmax {a.rows}x{a.cols} f32, TM={a.tm}, {threads} threads: compile {compile_s:.2f}s, "
          f"max abs err {err:.1e}")
    print(f"  tilewise cpu {t_cpu * 1e3:8.2f} ms")
    print(f"  numpy        {t_np * 1e3:8.2f} ms")
    print(f"  speedup over numpy: {t_np / t_cpu:.2f}x")


if __name__ == "__main__":
    main()
