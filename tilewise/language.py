"""The public names of the tile language that are not functions: annotations, enums and hints.

Functions (`tw.load`, `tw.exp`, ...) live in `tilewise.builtins`; this module holds what kernels
and launchers refer to by name.
"""
from __future__ import annotations

import enum


class _ConstantAnnotation:
    __slots__ = ("type",)

    def __init__(self, type_):
        self.type = type_

    def __repr__(self):
        return f"tw.Constant[{getattr(self.type, '__name__', self.type)}]"


class Constant:
    """`x: tw.Constant[int]` makes a parameter compile-time: each distinct value is its own specialisation."""

    def __class_getitem__(cls, type_):
        return _ConstantAnnotation(type_)


ConstInt = Constant[int]
ConstFloat = Constant[float]
ConstBool = Constant[bool]


class Array:
    """Annotation for an array parameter (documentation only: arrays are recognised by value)."""


class Tile:
    """The type of tiles inside a kernel (documentation only)."""


class PaddingMode(enum.Enum):
    UNDETERMINED = "undetermined"
    ZERO = "zero"
    NEG_ZERO = "neg_zero"
    NAN = "nan"
    POS_INF = "pos_inf"
    NEG_INF = "neg_inf"


class RoundingMode(enum.Enum):
    """Accepted on math ops; the reference and CPU backends always round to nearest even."""
    RN = "rn"
    RZ = "rz"
    RM = "rm"
    RP = "rp"
    FULL = "full"
    APPROX = "approx"
    RZI = "rzi"


class MemoryOrder(enum.Enum):
    RELAXED = "relaxed"
    ACQUIRE = "acquire"
    RELEASE = "release"
    ACQ_REL = "acq_rel"
    WEAK = "weak"


class MemoryScope(enum.Enum):
    BLOCK = "block"
    DEVICE = "device"
    SYS = "sys"


class ByTarget:
    """A per-architecture hint value: `tw.ByTarget(sm_100=2, default=1)`."""

    def __init__(self, default=None, **by_arch):
        self.default, self.by_arch = default, by_arch

    def resolve(self, arch: str | None):
        return self.by_arch.get(arch, self.default)

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in self.by_arch.items())
        return f"ByTarget({items}, default={self.default!r})"


def cdiv(a, b):
    """Ceiling division; works on the host and, on scalars, inside kernels."""
    return -(-a // b)
