"""Tiled matrix multiply C = A @ B: each block computes one TM x TN tile of C, walking K in steps of
TK and accumulating with tw.mma into a float32 tile. fp16 inputs keep the fp32 accumulator (as tensor
cores do). Shapes need not be multiples of the tiles: ZERO padding makes the partial K tile harmless."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def matmul(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    bm, bn = tw.bid(0), tw.bid(1)
    acc = tw.zeros((TM, TN), dtype=tw.float32)
    for k in range(tw.num_tiles(a, axis=1, shape=(TM, TK))):
        ta = tw.load(a, index=(bm, k), shape=(TM, TK), padding_mode=tw.PaddingMode.ZERO)
        tb = tw.load(b, index=(k, bn), shape=(TK, TN), padding_mode=tw.PaddingMode.ZERO)
        acc = tw.mma(ta, tb, acc)
    tw.store(c, index=(bm, bn), tile=acc.astype(c.dtype))


def check(dtype, m, n, k, tiles, rng, tol):
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.empty((m, n), np.float32)
    tm, tn, tk = tiles
    tw.launch(None, (tw.cdiv(m, tm), tw.cdiv(n, tn), 1), matmul, (a, b, c, tm, tn, tk))
    expected = a.astype(np.float64) @ b.astype(np.float64)
    err = float(np.max(np.abs(c - expected)) / max(1.0, np.max(np.abs(expected))))
    return err, err < tol


def main(m=100, n=72, k=90, seed=0):
    rng = np.random.default_rng(seed)
    results = [(name, *check(dtype, m, n, k, (32, 32, 16), rng, 1e-5))
               for name, dtype in (("fp32", np.float32), ("fp16", np.float16))]
    ok = all(r[2] for r in results)
    detail = ", ".join(f"{name} rel err {err:.1e}" for name, err, _ in results)
    print(f"matmul {m}x{k} @ {k}x{n}: {detail} {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
