"""What a name can be bound to while a kernel is lowered: IR tiles, arrays, lists of arrays,
bound tile methods, or plain Python constants (ints, floats, tuples, dtypes, modules...)."""
from __future__ import annotations

import numbers

from ..ir.dtypes import DType


class TileV:
    """A tile or scalar IR value."""
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v

    @property
    def type(self):
        return self.v.type

    @property
    def shape(self):
        return self.v.type.shape

    @property
    def dtype(self):
        return self.v.type.dtype

    @property
    def ndim(self):
        return len(self.v.type.shape)

    def __repr__(self):
        return f"<{self.v.type}>"


class ArrayV:
    """An array parameter: static dtype and rank; shape is read lazily as runtime scalars. A 0-d array
    (`zero_d`) travels as a one-element 1-d array in the IR; the memory functions address its element 0."""
    __slots__ = ("v", "name", "shape_values", "zero_d")

    def __init__(self, v, name, zero_d=False):
        self.v, self.name, self.shape_values, self.zero_d = v, name, None, zero_d

    @property
    def dtype(self):
        return self.v.type.dtype

    @property
    def ndim(self):
        return 0 if self.zero_d else self.v.type.ndim

    def __repr__(self):
        return f"<array {self.name}: {self.v.type}>"


class ArrayListV:
    """A list or tuple of arrays passed as one parameter; `len()` is static, items are indexed statically."""
    __slots__ = ("items", "name")

    def __init__(self, items, name):
        self.items, self.name = list(items), name


class Method:
    """`tile.reshape` and friends before they are called."""
    __slots__ = ("fn", "obj")

    def __init__(self, fn, obj):
        self.fn, self.obj = fn, obj


def is_const(x) -> bool:
    """True for Python values known at compile time (anything that is not an IR value)."""
    return not isinstance(x, (TileV, ArrayV, ArrayListV, Method))


def is_py_scalar(x) -> bool:
    return isinstance(x, (bool, numbers.Integral, numbers.Real)) and not isinstance(x, DType)


def describe(x) -> str:
    if isinstance(x, TileV):
        return "a scalar" if x.shape == () else f"a tile of shape {x.shape}"
    if isinstance(x, ArrayV):
        return f"the array '{x.name}'"
    if isinstance(x, ArrayListV):
        return f"the array list '{x.name}'"
    return f"{type(x).__name__} {x!r}"
