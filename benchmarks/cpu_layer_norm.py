"""Layer norm over the rows of a 4096 x 1024 float32 matrix (mean, variance, rsqrt, weight and bias, as
in examples/layer_norm.py's forward pass): a tilewise kernel on the cpu backend against NumPy (the
baseline, target >= 5.0x) and numba @njit(parallel=True), in one process: medians of interleaved
repeats after warm-up. Sweeps the rows per block (TM) first and times the best one.

    python benchmarks/cpu_layer_norm.py [--rows 4096] [--cols 1024] [--tm 1,2,4,8] [--repeat 10]
"""
from __future__ import annotations

import os
import sys

import numpy as np

import tilewise as tw

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

TARGET = 5.0
TM_SWEEP = (1, 2, 4, 8)
EPS = 1e-5


@tw.kernel
def layer_norm(x, w, b, y, eps: float, TM: tw.Constant[int], TN: tw.Constant[int]):
    """TM whole rows per block (TN >= the row length, padded with zeros)."""
    n = x.shape[1]
    t = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    mean = tw.sum(t, axis=1, keepdims=True) / n
    d = tw.where(tw.arange(TN)[None, :] < n, t - mean, 0.0)  # padded columns must not add mean^2
    rstd = tw.rsqrt(tw.sum(d * d, axis=1, keepdims=True) / n + eps)
    wt = tw.load(w, index=(0,), shape=(TN,), padding_mode=tw.PaddingMode.ZERO)
    bt = tw.load(b, index=(0,), shape=(TN,), padding_mode=tw.PaddingMode.ZERO)
    tw.store(y, index=(tw.bid(0), 0), tile=d * rstd * wt[None, :] + bt[None, :])


def numpy_layer_norm(x, w, b, eps=EPS):
    mean = x.mean(axis=1, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=1, keepdims=True)
    return d / np.sqrt(var + eps) * w + b


def numba_layer_norm(fastmath=False):
    """The loop a numba user writes: one row per prange iteration, three passes over the row, float32
    accumulators like the tilewise kernel. Without fastmath the sums stay scalar and in order; with
    it LLVM may reassociate them into vector sums."""
    nb = numba_module()
    if nb is None:
        return None

    @nb.njit(parallel=True, fastmath=fastmath)
    def layer_norm_nb(x, w, b, y, eps):
        n = x.shape[1]
        for i in nb.prange(x.shape[0]):
            s = np.float32(0.0)
            for j in range(n):
                s += x[i, j]
            mean = s / n
            v = np.float32(0.0)
            for j in range(n):
                d = x[i, j] - mean
                v += d * d
            rstd = np.float32(1.0) / np.sqrt(v / n + np.float32(eps))
            for j in range(n):
                y[i, j] = (x[i, j] - mean) * rstd * w[j] + b[j]
    return layer_norm_nb


def main(argv=None):
    a = row_kernel_args(__doc__, TM_SWEEP, argv)
    backend = use_backend(a.backend)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((a.rows, a.cols)) * 2 + 1).astype(np.float32)
    w = rng.standard_normal(a.cols).astype(np.float32)
    b = rng.standard_normal(a.cols).astype(np.float32)
    y = np.empty_like(x)
    want = numpy_layer_norm(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
    tol = 1e-4 * max(1.0, float(np.max(np.abs(want))))
    tn = 1 << (a.cols - 1).bit_length()

    def launcher(tm):
        grid, args = (tw.cdiv(a.rows, tm), 1, 1), (x, w, b, y, EPS, tm, tn)
        return lambda: tw.launch(None, grid, layer_norm, args)

    def check(label, out):
        err = float(np.max(np.abs(out - want)))
        assert err < tol, f"{label} layer norm is off by {err:.1e}"

    print(f"layer norm {a.rows}x{a.cols} f32, backend {backend}, {threads()} threads; {machine()}")
    tm, run = sweep("TM", a.tm, launcher, lambda: y.fill(np.nan), lambda tm: check(f"tilewise TM={tm}", y),
                    max(3, a.repeat // 2))
    y_nb = np.empty_like(x)
    contenders = [(f"tilewise {backend}, TM={tm}", run), ("numpy", lambda: numpy_layer_norm(x, w, b)),
                  *numba_contenders(numba_layer_norm, lambda f: f(x, w, b, y_nb, EPS) or y_nb, check)]
    diagnosis = math_diagnosis(layer_norm, (x, w, b, y, EPS, tm, tn))
    return compare(f"layer norm {a.rows}x{a.cols} f32 (TM={tm})", "NumPy layer norm", contenders, a.repeat, TARGET,
                   lambda t: memory_limit(2 * x.nbytes, t, otherwise=diagnosis))


if __name__ == "__main__":
    main()
