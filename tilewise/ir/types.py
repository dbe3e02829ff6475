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
    """A global array: dtype and rank are static; shape and strides are runtime values."""
    dtype: DType
    ndim: int

    def __str__(self):
        return f"array<{self.dtype.name}, {self.ndim}d>"


def scalar(dtype: DType) -> TileType:
    return TileType((), dtype)
