"""Layer normalisation over the last axis, for rows of any length: each block owns one row and walks
it in tiles of TN columns three times (mean, variance, normalise), so the row need not fit in a tile.
The loop bounds are runtime values (the array's shape)."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def layer_norm(x, w, b, y, eps: float, TN: tw.Constant[int]):
    row = tw.bid(0)
    n = x.shape[1]
    tiles = tw.num_tiles(x, axis=1, shape=(1, TN))

    acc = tw.zeros((1, TN), dtype=tw.float32)
    for j in range(tiles):
        acc += tw.load(x, index=(row, j), shape=(1, TN), padding_mode=tw.PaddingMode.ZERO)
    mean = tw.sum(acc, axis=1, keepdims=True) / n

    acc = tw.zeros((1, TN), dtype=tw.float32)
    for j in range(tiles):
        cols = j * TN + tw.arange(TN)[None, :]
        t = tw.load(x, index=(row, j), shape=(1, TN), padding_mode=tw.PaddingMode.ZERO)
        d = tw.where(cols < n, t - mean, 0.0)  # padded columns must not add (0 - mean)^2
        acc += d * d
    rstd = 1.0 / tw.sqrt(tw.sum(acc, axis=1, keepdims=True) / n + eps)

    for j in range(tiles):
        t = tw.load(x, index=(row, j), shape=(1, TN))
        wt = tw.load(w, index=(j,), shape=(TN,))
        bt = tw.load(b, index=(j,), shape=(TN,))
        tw.store(y, index=(row, j), tile=(t - mean) * rstd * wt[None, :] + bt[None, :])


def reference(x, w, b, eps):
    x = x.astype(np.float64)
    mean = x.mean(axis=1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def main(m=37, n=300, tn=128, eps=1e-5, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((m, n)) * 2 + 1).astype(np.float32)
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    y = np.empty_like(x)
    tw.launch(None, (m, 1, 1), layer_norm, (x, w, b, y, eps, tn))
    err = float(np.max(np.abs(y - reference(x, w, b, eps))))
    ok = err < 1e-4
    print(f"layer_norm {m}x{n}: max abs error {err:.2e} {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
