"""The three kinds of IR value type: tiles (static shape; a scalar is a 0-d tile) and array references."""
from __future__ import annotations

from dataclasses import dataclass

from .dtypes import DType


@dataclass(frozen=True)
class TileType:
    shape: tuple
    dtype: DType

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def is_scalar(self):
        return self.shape == ()

    def __str__(self):
        return f"tile<{'x'.join(map(str, self.shape + (self.dtype.name,)))}>"


@dataclass(frozen=True)
class ArrayType:
    """A global array: dtype and rank are static; shape and strides are runtime values, except that
    `unit_stride` (a specialisation fact) says the innermost stride is one element, so a backend may
    compile it in."""
    dtype: DType
    ndim: int
    unit_stride: bool = False

    def __str__(self):
        return f"array<{self.dtype.name}, {self.ndim}d{', unit-stride' if self.unit_stride else ''}>"


def scalar(dtype: DType) -> TileType:
    return TileType((), dtype)
