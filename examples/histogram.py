"""Histogram with atomics: each block reads a tile of bin indices and adds one to each bin. Many lanes
of one tile hit the same bin, and many blocks hit the same bins; atomic_add makes every one count.
A mask keeps the padded lanes of the last, partial tile out of the count."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def histogram(data, hist, TILE: tw.Constant[int]):
    i = tw.bid(0)
    bins = tw.load(data, index=(i,), shape=(TILE,), padding_mode=tw.PaddingMode.ZERO)
    valid = i * TILE + tw.arange(TILE) < data.shape[0]
    tw.atomic_add(hist, (bins,), 1, mask=valid)


def main(n=5000, nbins=37, tile=256, seed=0):
    rng = np.random.default_rng(seed)
    # skewed data, so that a few bins get most of the (duplicate) hits
    data = np.minimum(rng.geometric(0.15, n) - 1, nbins - 1).astype(np.int32)
    hist = np.zeros(nbins, np.int32)
    tw.launch(None, (tw.cdiv(n, tile), 1, 1), histogram, (data, hist, tile))
    ok = np.array_equal(hist, np.bincount(data, minlength=nbins))
    print(f"histogram n={n} bins={nbins}: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
