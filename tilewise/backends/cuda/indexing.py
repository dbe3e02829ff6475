"""Static index arithmetic for generated code: flat element index <-> row-major coordinates of a tile
shape known at compile time, as C expressions (constants fold away in the CUDA compiler)."""
from __future__ import annotations

import math


def unravel(i, shape):
    """C expressions of the row-major coordinates of flat index `i` in `shape`."""
    out = []
    for k, s in enumerate(shape):
        inner, outer = math.prod(shape[k + 1:]), math.prod(shape[:k])
        if s == 1:
            out.append("0")
            continue
        e = i if inner == 1 else f"({i} / {inner})"
        out.append(e if outer == 1 else f"({e} % {s})")
    return out


def ravel(coords, shape):
    terms = []
    for k, c in enumerate(coords):
        inner = math.prod(shape[k + 1:])
        if c != "0":
            terms.append(c if inner == 1 else f"{c} * {inner}")
    return " + ".join(terms) or "0"
