"""The public names of the tile language that are not functions: annotations, enums and hints.

Functions (`tw.load`, `tw.exp`, ...) live in `tilewise.builtins`; this module holds what kernels
and launchers refer to by name.
"""
from __future__ import annotations

import contextlib
import enum
import typing
from dataclasses import dataclass


class ConstantAnnotation:
    """Marks a parameter compile-time: `tw.Constant[int]` is one, and so is cuTile's spelling
    `typing.Annotated[int, ct.ConstantAnnotation()]`. `type` is the annotated type (None: any)."""
    __slots__ = ("type",)

    def __init__(self, type_=None):
        self.type = type_

    def __repr__(self):
        if self.type is None:
            return "ConstantAnnotation()"
        return f"tw.Constant[{getattr(self.type, '__name__', self.type)}]"


_ConstantAnnotation = ConstantAnnotation


class Constant:
    """`x: tw.Constant[int]` makes a parameter compile-time: each distinct value is its own specialisation.
    A bare `x: tw.Constant` is a compile-time value of any type."""

    def __class_getitem__(cls, type_):
        return ConstantAnnotation(type_)


ConstInt = Constant[int]
ConstFloat = Constant[float]
ConstBool = Constant[bool]


class Array:
    """Annotation for an array parameter (documentation only: arrays are recognised by value)."""


class Tile:
    """The type of tiles inside a kernel (documentation only)."""


Scalar = int | float  # cuTile's annotation for scalars (documentation only)


def _int_width_name(dt):
    """'int32' or 'int64' for tw/NumPy/PyTorch spellings of those dtypes, else None (language.py sits beside
    ir/ and cannot use its dtype table)."""
    name = dt if isinstance(dt, str) else getattr(dt, "name", None) or getattr(dt, "__name__", None) or str(dt)
    name = str(name).rsplit(".", 1)[-1]
    return name if name in ("int32", "int64") else None


@dataclass(frozen=True, kw_only=True)
class ArrayAnnotation:
    """cuTile's `Annotated[ct.Array, ct.ArrayAnnotation(index_dtype=..., static_shape_dims=...,
    static_stride_dims=...)]`. Accepted and checked; the host backends index in 64 bits anyway and read
    shapes at run time, so the hints change no result."""
    index_dtype: object = "int32"
    static_shape_dims: tuple = ()
    static_stride_dims: tuple = ()

    def __post_init__(self):
        if _int_width_name(self.index_dtype) is None:
            raise ValueError(f"index_dtype must be int32 or int64, got {self.index_dtype!r}")
        for name in ("static_shape_dims", "static_stride_dims"):
            dims = getattr(self, name)
            if not isinstance(dims, tuple) or any(isinstance(d, bool) or not isinstance(d, int) for d in dims):
                raise TypeError(f"{name} must be a tuple of ints, got {dims!r}")


@dataclass(frozen=True, kw_only=True)
class ScalarAnnotation:
    """cuTile's scalar-parameter annotation: `dtype` int32 or int64 (see ScalarInt64)."""
    dtype: object

    def __post_init__(self):
        if _int_width_name(self.dtype) is None:
            raise ValueError(f"dtype must be int32 or int64, got {self.dtype!r}")


@dataclass(frozen=True, kw_only=True)
class ListAnnotation:
    """cuTile's annotation of a list-of-arrays parameter: `element` is an ArrayAnnotation."""
    element: object

    def __post_init__(self):
        element = self.element
        if typing.get_origin(element) is typing.Annotated:
            found = [m for m in element.__metadata__ if isinstance(m, ArrayAnnotation)]
            if len(found) != 1:
                raise TypeError(f"element must carry exactly one ArrayAnnotation, got {element!r}")
            object.__setattr__(self, "element", found[0])
        elif not isinstance(element, ArrayAnnotation):
            raise TypeError(f"element must be an ArrayAnnotation, got {type(element).__name__}")


_T = typing.TypeVar("_T")
IndexedWithInt64 = typing.Annotated[_T, ArrayAnnotation(index_dtype="int64")]
ScalarInt64 = typing.Annotated[_T, ScalarAnnotation(dtype="int64")]


class Slice:
    """cuTile's start + length entry of `load_advanced_indexing` (not supported by tilewise yet)."""

    def __init__(self, start, length, /):
        self.start, self.length = start, length


class TiledView:
    """cuTile's tiled view of an array (`array.tiled_view(...)`; not supported by tilewise yet)."""


def function(func=None, /, *, host=False, tile=True):
    """cuTile's `@ct.function`: marks a tile function. Every plain Python function called from a kernel
    is already inlined, so this returns the function unchanged (callable from host code too)."""
    return (lambda f: f) if func is None else func


_compiler_timeout = [None]


@contextlib.contextmanager
def compiler_timeout(timeout_sec: float):
    """`with tw.compiler_timeout(10): ...`: a limit in seconds on each external compiler run (g++ for
    the cuda-emulated backend) while the block runs; a compile over it raises TileCompilerTimeoutError.
    In-process compilers (LLVM for cpu, NVRTC) are not interrupted. Not thread-safe, as in cuTile."""
    if not timeout_sec > 0:
        raise ValueError(f"compiler_timeout needs a positive number of seconds, got {timeout_sec!r}")
    saved = _compiler_timeout[0]
    _compiler_timeout[0] = float(timeout_sec)
    try:
        yield
    finally:
        _compiler_timeout[0] = saved


def current_compiler_timeout():
    """The limit set by the innermost `compiler_timeout` (None: no limit)."""
    return _compiler_timeout[0]


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
