"""Row softmax of a 4096 x 1024 float32 matrix: a tilewise kernel on the cpu backend against NumPy
(the baseline, target >= 4.0x) and numba @njit(parallel=True), in one process: medians of interleaved
repeats after warm-up. Sweeps the rows per block (TM) first and times the best one.

    python benchmarks/cpu_softmax.py [--rows 4096] [--cols 1024] [--tm 4,8,16] [--repeat 10]
"""
from __future__ import annotations

import os
import sys

import numpy as np

import tilewise as tw
from tilewise.tools.demo import softmax  # the shipped row-softmax kernel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    compare,
    machine,
    math_diagnosis,
    memory_limit,
    numba_contenders,
    numba_module,
    row_kernel_args,
    sweep,
    threads,
    use_backend,
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
    a = row_kernel_args(__doc__, TM_SWEEP, argv)
    backend = use_backend(a.backend)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((a.rows, a.cols)) * 3).astype(np.float32)
    y = np.empty_like(x)
    want = numpy_softmax(x.astype(np.float64))
    tn = 1 << (a.cols - 1).bit_length()

    def launcher(tm):
        grid, args = (tw.cdiv(a.rows, tm), 1, 1), (x, y, tm, tn)
        return lambda: tw.launch(None, grid, softmax, args)

    def check(label, out):
        err = float(np.max(np.abs(out - want) / want))
        assert err < 1e-5, f"{label} softmax is off by {err:.1e} (relative)"

    print(f"softmax {a.rows}x{a.cols} f32, backend {backend}, {threads()} threads; {machine()}")
    tm, run = sweep("TM", a.tm, launcher, lambda: y.fill(np.nan), lambda tm: check(f"tilewise TM={tm}", y),
                    max(3, a.repeat // 2))
    y_nb = np.empty_like(x)
    contenders = [(f"tilewise {backend}, TM={tm}", run), ("numpy", lambda: numpy_softmax(x)),
                  *numba_contenders(numba_softmax, lambda f: f(x, y_nb) or y_nb, check)]
    return compare(f"softmax {a.rows}x{a.cols} f32 (TM={tm})", "NumPy softmax", contenders, a.repeat, TARGET,
                   lambda t: memory_limit(2 * x.nbytes, t, otherwise=math_diagnosis(softmax, (x, y, tm, tn))))


if __name__ == "__main__":
    main()
