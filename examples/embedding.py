"""Embedding lookup: out[t, :] = table[ids[t], :]. Each block gathers the rows of TT tokens, TD columns
at a time; the gather's index tiles (row ids down, column numbers across) broadcast to (TT, TD), and
out-of-range columns of the last tile read the padding value and are dropped by the store."""
import sys

import numpy as np

import tilewise as tw


@tw.kernel
def embedding(ids, table, out, TT: tw.Constant[int], TD: tw.Constant[int]):
    t = tw.bid(0)
    rows = tw.load(ids, index=(t,), shape=(TT,), padding_mode=tw.PaddingMode.ZERO)
    for j in range(tw.num_tiles(table, axis=1, shape=(1, TD))):
        cols = j * TD + tw.arange(TD)
        tile = tw.gather(table, (rows[:, None], cols[None, :]))
        tw.store(out, index=(t, j), tile=tile)


def main(vocab=500, dim=72, tokens=203, tt=16, td=32, seed=0):
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    ids = rng.integers(0, vocab, tokens).astype(np.int64)
    ids[:10] = ids[0]  # repeated tokens read the same row
    out = np.empty((tokens, dim), np.float32)
    tw.launch(None, (tw.cdiv(tokens, tt), 1, 1), embedding, (ids, table, out, tt, td))
    ok = np.array_equal(out, table[ids])
    print(f"embedding {tokens} tokens x {dim} dims from {vocab} rows: {'ok' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
