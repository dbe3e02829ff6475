"""Vector addition: the smallest tile program. Each block adds one tile of TILE elements; the last
tile is partial, and its out-of-bounds lanes are dropped by the store."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def vector_add(a, b, c, TILE: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, index=(i,), shape=(TILE,))
    y = tw.load(b, index=(i,), shape=(TILE,))
    tw.store(c, index=(i,), tile=x + y)


def main(n=10_000, tile=1024, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    c = np.empty_like(a)
    tw.launch(None, (tw.cdiv(n, tile), 1, 1), vector_add, (a, b, c, tile))
    ok = np.array_equal(c, a + b)
    print(f"vector_add n={n}: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
