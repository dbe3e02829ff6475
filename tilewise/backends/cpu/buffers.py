"""Where values live while a kernel runs: tiles in row-major stack buffers, arrays as runtime views."""
from __future__ import annotations

import math


class Buf:
    """A tile's storage: a pointer to its elements in row-major order."""
    __slots__ = ("ptr", "dt", "shape")

    def __init__(self, ptr, dt, shape):
        self.ptr, self.dt, self.shape = ptr, dt, tuple(shape)

    @property
    def size(self):
        return math.prod(self.shape)


class ArrayRef:
    """An array parameter: data pointer and runtime shape and strides (i64 values, strides in elements)."""
    __slots__ = ("ptr", "dt", "shape", "strides")

    def __init__(self, ptr, dt, shape, strides):
        self.ptr, self.dt, self.shape, self.strides = ptr, dt, shape, strides
