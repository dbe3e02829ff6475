"""Tiled transpose: each block loads a TM x TN tile and stores its transpose at the mirrored tile
index. The input here is a strided view (every other column of a larger array): strides are honoured."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def transpose(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    t = tw.load(x, index=(i, j), shape=(TM, TN))
    tw.store(y, index=(j, i), tile=tw.transpose(t))


def main(m=70, n=45, tm=16, tn=32, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((m, 2 * n)).astype(np.float32)
    x = base[:, ::2]
    y = np.empty((n, m), np.float32)
    tw.launch(None, (tw.cdiv(m, tm), tw.cdiv(n, tn), 1), transpose, (x, y, tm, tn))
    ok = np.array_equal(y, x.T)
    print(f"transpose {m}x{n} (strided input): {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
