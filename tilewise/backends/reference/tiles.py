"""Fast paths for loads and stores of whole tiles that lie inside the array (almost every block of
almost every kernel): each block's tile is one sub-array of a strided "tiled" view, so a load is a
slice (no copy) or a gather of whole tiles, never the per-element fancy indexing that partial tiles
need. The results are exactly those of the general path in interpreter.py."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided


def full_tiles(view, shape, idx):
    """(tiled, full): `tiled[t0, .., tn]` is tile t of `view` for the full tiles only, and `full`
    marks the blocks whose tile index is one of them. (None, None) when no full tile fits."""
    counts = tuple(v // s for v, s in zip(view.shape, shape))
    if 0 in counts:
        return None, None
    # as_strided loses ml_dtypes' dtypes (bfloat16, float8): stride the raw bytes, then relabel.
    raw = view.view(np.dtype(f"u{view.itemsize}"))
    tiled = as_strided(raw, counts + tuple(shape),
                       tuple(st * s for st, s in zip(view.strides, shape)) + view.strides).view(view.dtype)
    full = np.ones(idx[0].shape[0], bool)
    for i, t in zip(idx, counts):
        full &= (i >= 0) & (i < t)
    return tiled, full


def _key(idx):
    """An index into `tiled` that picks each block's tile: ints where every block agrees, one slice
    where the blocks count up by one (a row of tiles: basic indexing, a view), else index arrays."""
    n = idx[0].shape[0]
    key, ranged = [], 0
    for i in idx:
        first = int(i[0])
        if (i == first).all():
            key.append(first)
        elif ranged == 0 and (i == np.arange(first, first + n)).all():
            key.append(slice(first, first + n))
            ranged = 1
        else:
            return tuple(np.asarray(j, np.intp) for j in idx), "fancy"
    return tuple(key), ("slice" if ranged else "same")


def take(tiled, idx, copy):
    """Each block's tile, shape (blocks, *tile). `copy=False` may return a read-only view of the
    array: only safe when nothing the kernel writes can alias it."""
    n = idx[0].shape[0]
    key, kind = _key(idx)
    if kind == "fancy":
        return tiled[key]  # advanced indexing always copies
    out = tiled[key]
    if copy:
        out = out.copy()
    if kind == "same":
        return np.broadcast_to(out, (n,) + out.shape)  # read-only already
    out = out.view()
    out.flags.writeable = False
    return out


def put(tiled, idx, tiles):
    """Store each block's tile; where blocks share a tile the last block wins, as in the general path."""
    key, kind = _key(idx)
    tiled[key] = tiles[-1] if kind == "same" else tiles
