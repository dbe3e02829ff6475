"""Row softmax: each block normalises TM rows that fit in one tile of TN >= n_cols columns. Padding
with -inf makes the padded columns vanish from both the max and the sum."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def softmax(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    e = tw.exp(rows - tw.max(rows, axis=1, keepdims=True))
    tw.store(y, index=(tw.bid(0), 0), tile=e / tw.sum(e, axis=1, keepdims=True))


def reference(x):
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main(m=100, n=300, tm=4, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, n)) * 3).astype(np.float32)
    y = np.empty_like(x)
    tn = 1 << (n - 1).bit_length()  # the smallest power of two that holds a row (any size >= n works)
    tw.launch(None, (tw.cdiv(m, tm), 1, 1), softmax, (x, y, tm, tn))
    err = float(np.max(np.abs(y - reference(x))))
    ok = err < 1e-6
    print(f"softmax {m}x{n}: max abs error {err:.2e} {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
