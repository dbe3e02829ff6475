"""Row softmax of a 4096 x 1024 float32 matrix: a tilewise kernel on the cpu backend against NumPy
(the baseline, target >= 4.0x) and numba @njit(parallel=True), in one process: medians of interleaved
repeats after warm-up. Sweeps the rows per block (TM) first and times the best one.

    python benchmarks/cpu_softmax.py [--rows 4096] [--cols 1024] [--tm 4,8,16] [--repeat 10]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tilewise as tw
from tilewise.demo import softmax  # the shipped row-softmax kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    emit_result,
    interleaved_medians,
    machine,
    math_diagnosis,
    memory_limit,
    numba_module,
    sweep,
    threads,
    use_backend,
    verdict,
)

TARGET = 4.0
TM_SWEEP = (2, 4, 8, 16)



def numpy_softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def numba_softmax(fastmath=False):
    """The loop a numba user writes: one row per prange iteration, three passes over the row. Without
    fastmath (tilewise's exp is not fast-math either) the max and sum stay scalar, in order; numba's exp
    is a scalar libm call either way (vector exp needs Intel's SVML, which pip's numba lacks)."""
    nb = numba_module()
    if nb is None:
        return None

    @nb.njit(parallel=True, fastmath=fastmath)
    def softmax_nb(x, y):
        for i in nb.prange(x.shape[0]):
            m = x[i, 0]
            for j in range(1, x.shape[1]):
                m = max(m, x[i, j])
            s = np.float32(0.0)
            for j in range(x.shape[1]):
                e = np.exp(x[i, j] - m)
                y[i, j] = e
                s += e
            r = np.float32(1.0) / s
            for j in range(x.shape[1]):
                y[i, j] *= r
    return softmax_nb


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=4096)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--tm", default=",".join(map(str, TM_SWEEP)), help="rows per block; a comma list is swept")
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--backend", default="cpu")
    a = p.parse_args(argv)
    backend = use_backend(a.backend)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((a.rows, a.cols)) * 3).astype(np.float32)
    y = np.empty_like(x)
    want = numpy_softmax(x.astype(np.float64))
    tn = 1 << (a.cols - 1).bit_length()

    def launcher(tm):
        grid, args = (tw.cdiv(a.rows, tm), 1, 1), (x, y, tm, tn)
        return lambda: tw.launch(None, grid, softmax, args)

    print(f"softmax {a.rows}x{a.cols} f32, backend {backend}, {threads()} threads; {machine()}")
    def check(tm):
        err = float(np.max(np.abs(y - want) / want))
        assert err < 1e-5, f"tilewise softmax TM={tm} is off by {err:.1e} (relative)"
    tm, run = sweep("TM", [int(t) for t in a.tm.split(",")], launcher, lambda: y.fill(np.nan), check,
                    max(3, a.repeat // 2))

    fns, names = [run, lambda: numpy_softmax(x)], [f"tilewise {backend}, TM={tm}", "numpy"]
    nb = numba_softmax()
    if nb is not None:
        for label, f in (("numba parallel", nb), ("numba fastmath", numba_softmax(fastmath=True))):
            y_nb = np.empty_like(x)
            f(x, y_nb)
            err = float(np.max(np.abs(y_nb - want) / want))
            assert err < 1e-5, f"{label} softmax is off by {err:.1e} (relative)"
            fns.append(lambda f=f, y_nb=y_nb: f(x, y_nb))
            names.append(label)
    times = interleaved_medians(fns, a.repeat)
    for name, s in zip(names, times):
        print(f"  {name:<22} {s * 1e3:8.2f} ms  {times[1] / s:5.2f}x numpy")
    if nb is None:
        print("  numba not installed (pip install -e '.[bench]'): skipped")
    ratio = times[1] / times[0]
    limit = memory_limit(2 * x.nbytes, times[0], otherwise=math_diagnosis(softmax, (x, y, tm, tn)))
    print(f"  ratio {ratio:.2f}x NumPy (target >= {TARGET}x: {verdict(ratio, TARGET)})")
    print(f"  limit: {limit}")
    emit_result(f"softmax {a.rows}x{a.cols} f32 (TM={tm})", times[0], "NumPy softmax", times[1], TARGET,
                times[2] if nb is not None else None, limit,
                peers={"fastmath": times[3]} if nb is not None else None)
    return ratio


if __name__ == "__main__":
    main()
