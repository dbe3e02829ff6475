"""Per-block limits that hold on every backend, checked once on the lowered IR so that a kernel which no
backend could run is refused at compile time, at the line that makes the offending tile."""
from __future__ import annotations

import math

from ..errors import TileValueError
from ..ir.types import TileType

# 2**24 elements is 64 MiB of float32 and 128 MiB of float64 per tile. It keeps every flat element index
# inside int32 with room for the bounds arithmetic, keeps one block's tiles on a cpu worker's stack within
# a stack the operating system will grant, and is far above what fits on a GPU (the cuda backend's
# shared-memory check refuses much smaller tiles with its own message).
MAX_TILE_ELEMENTS = 1 << 24


def check_tile_sizes(fn):
    """Raise TileValueError at the first op whose tile result holds more than MAX_TILE_ELEMENTS."""
    for op in fn.walk():
        for r in op.results:
            t = r.type
            if not isinstance(t, TileType):
                continue
            n = math.prod(t.shape)
            if n > MAX_TILE_ELEMENTS:
                raise TileValueError(
                    f"{t} has {n:,} elements ({n * t.dtype.itemsize:,} bytes); "
                    f"a tile may hold at most {MAX_TILE_ELEMENTS:,} (2**24) elements on every backend. Use "
                    "smaller tiles: give the work to more blocks (a larger grid) or loop over pieces with "
                    "range() inside the kernel", op.loc)
