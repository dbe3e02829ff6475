"""Prefix sums with tw.cumsum, two ways.

- Per row: one block owns a row and walks it in tiles, carrying the running total from tile to tile.
- Across blocks (1-D): each block scans its own tile and writes the tile's total; the totals are
  scanned (by the per-row kernel, as one row); then each block adds the total of all blocks before it.
  Block 0 reads "the total before it" at index -1, which is out of bounds and pads to zero.
"""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def scan_rows(x, y, TN: tw.Constant[int]):
    row = tw.bid(0)
    carry = tw.zeros((1, 1), dtype=x.dtype)
    for j in range(tw.num_tiles(x, axis=1, shape=(1, TN))):
        t = tw.load(x, index=(row, j), shape=(1, TN), padding_mode=tw.PaddingMode.ZERO)
        tw.store(y, index=(row, j), tile=tw.cumsum(t, axis=1) + carry)
        carry = carry + tw.sum(t, axis=1, keepdims=True)


@tw.kernel
def scan_blocks(x, y, totals, TILE: tw.Constant[int]):
    i = tw.bid(0)
    t = tw.load(x, index=(i,), shape=(TILE,), padding_mode=tw.PaddingMode.ZERO)
    tw.store(y, index=(i,), tile=tw.cumsum(t))
    tw.store(totals, index=(i,), tile=tw.sum(t))


@tw.kernel
def add_offsets(y, prefix, TILE: tw.Constant[int]):
    i = tw.bid(0)
    before = tw.load(prefix, index=(i - 1,), shape=(1,), padding_mode=tw.PaddingMode.ZERO)
    tw.store(y, index=(i,), tile=tw.load(y, index=(i,), shape=(TILE,)) + before)


def cumsum_1d(x, tile):
    blocks = tw.cdiv(x.shape[0], tile)
    y = np.empty_like(x)
    totals = np.empty((1, blocks), x.dtype)
    tw.launch(None, (blocks, 1, 1), scan_blocks, (x, y, totals[0], tile))
    prefix = np.empty_like(totals)
    tw.launch(None, (1, 1, 1), scan_rows, (totals, prefix, tile))
    tw.launch(None, (blocks, 1, 1), add_offsets, (y, prefix[0], tile))
    return y


def main(rows=13, cols=1000, n=10_007, tile=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, cols)).astype(np.float32)
    y = np.empty_like(x)
    tw.launch(None, (rows, 1, 1), scan_rows, (x, y, tile))
    expected = np.cumsum(x.astype(np.float64), axis=1)
    err = float(np.max(np.abs(y - expected)))
    ok_rows = err < 1e-4 * np.sqrt(cols)

    v = rng.integers(-1000, 1000, n).astype(np.int32)
    ok_1d = np.array_equal(cumsum_1d(v, tile), np.cumsum(v).astype(np.int32))
    ok = ok_rows and ok_1d
    print(f"cumsum rows {rows}x{cols} max abs error {err:.1e}, 1-D int32 n={n} over "
          f"{tw.cdiv(n, tile)} blocks: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
