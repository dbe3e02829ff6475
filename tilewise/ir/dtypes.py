"""Element types of the tile language and the promotion rules between them."""
from __future__ import annotations

import ml_dtypes
import numpy as np


class DType:
    """One element type: its name, host NumPy dtype, kind ('b', 'i', 'u', 'f') and bit width."""

    __slots__ = ("name", "np", "kind", "bits")

    def __init__(self, name: str, np_dtype, kind: str, bits: int):
        self.name, self.np, self.kind, self.bits = name, np.dtype(np_dtype), kind, bits

    def __repr__(self):
        return f"tw.{self.name}"

    def __reduce__(self):
        return (from_name, (self.name,))

    @property
    def is_float(self):
        return self.kind == "f"

    @property
    def is_int(self):
        return self.kind in "iu"

    @property
    def is_bool(self):
        return self.kind == "b"

    @property
    def itemsize(self):
        return self.np.itemsize


bool_ = DType("bool_", np.bool_, "b", 1)
int8 = DType("int8", np.int8, "i", 8)
int16 = DType("int16", np.int16, "i", 16)
int32 = DType("int32", np.int32, "i", 32)
int64 = DType("int64", np.int64, "i", 64)
uint8 = DType("uint8", np.uint8, "u", 8)
uint16 = DType("uint16", np.uint16, "u", 16)
uint32 = DType("uint32", np.uint32, "u", 32)
uint64 = DType("uint64", np.uint64, "u", 64)
float16 = DType("float16", np.float16, "f", 16)
bfloat16 = DType("bfloat16", ml_dtypes.bfloat16, "f", 16)
float32 = DType("float32", np.float32, "f", 32)
float64 = DType("float64", np.float64, "f", 64)
# tf32 lives in float32 storage; casting to it rounds the mantissa to 10 bits.
tfloat32 = DType("tfloat32", np.float32, "f", 32)
float8_e4m3fn = DType("float8_e4m3fn", ml_dtypes.float8_e4m3fn, "f", 8)
float8_e5m2 = DType("float8_e5m2", ml_dtypes.float8_e5m2, "f", 8)

# cuTile's narrow block-scaling types. Host arrays of them exist (ml_dtypes); no backend computes in them.
float4_e2m1fn = DType("float4_e2m1fn", ml_dtypes.float4_e2m1fn, "f", 4)
float8_e5m3fnu = DType("float8_e5m3fnu", ml_dtypes.float8_e5m3fnu, "f", 8)
float8_e8m0fnu = DType("float8_e8m0fnu", ml_dtypes.float8_e8m0fnu, "f", 8)
HOST_ONLY = frozenset({float4_e2m1fn, float8_e5m3fnu, float8_e8m0fnu})

ALL = [bool_, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
       float16, bfloat16, float32, float64, tfloat32, float8_e4m3fn, float8_e5m2]
_BY_NAME = {d.name: d for d in ALL + sorted(HOST_ONLY, key=lambda d: d.name)}
_BY_NAME.update({"bool": bool_, "half": float16, "float": float32, "double": float64,
                 "int": int32, "float8_e4m3": float8_e4m3fn, "tf32": tfloat32})
# A host array's dtype maps back to exactly one language dtype (tfloat32 has no host form; the HOST_ONLY
# types are left out, so their arrays are refused at launch with the list of supported dtypes).
_BY_NP = {d.np: d for d in ALL if d is not tfloat32}
_PY_TYPES = {bool: bool_, int: int64, float: float64}


def from_name(name: str) -> DType:
    return _BY_NAME[name]


def from_any(x) -> DType | None:
    """A tilewise dtype from a tilewise, NumPy, ml_dtypes or PyTorch dtype (or None if it isn't one)."""
    if isinstance(x, DType):
        return x
    if x in _PY_TYPES:
        return _PY_TYPES[x]
    if isinstance(x, str):
        return _BY_NAME.get(x)
    mod = type(x).__module__
    if mod.startswith("torch"):  # torch.float16 -> "torch.float16"
        return _BY_NAME.get(str(x).rsplit(".", 1)[-1])
    try:
        d = np.dtype(x)
    except (TypeError, ValueError):
        return None
    return _BY_NP.get(d) or next((h for h in HOST_ONLY if h.np == d), None)


def from_numpy(np_dtype) -> DType | None:
    return _BY_NP.get(np.dtype(np_dtype))


_FLOAT_RANK = {float8_e5m2: 0, float8_e4m3fn: 0, float16: 1, bfloat16: 1, float32: 2, tfloat32: 2,
               float64: 3}


def promote(a: DType, b: DType) -> DType:
    """Promotion of two tile dtypes (NumPy's table, extended to the narrow float types)."""
    if a is b:
        return a
    if a is tfloat32 or b is tfloat32:
        a, b = (float32 if a is tfloat32 else a), (float32 if b is tfloat32 else b)
        return promote(a, b)
    if a.is_bool:
        return b
    if b.is_bool:
        return a
    if a.is_float and b.is_float:
        ra, rb = _FLOAT_RANK[a], _FLOAT_RANK[b]
        if ra != rb:
            return a if ra > rb else b
        return {0: float16, 1: float32}[ra]  # e4m3+e5m2 -> f16, f16+bf16 -> f32
    if a.is_float or b.is_float:
        return a if a.is_float else b
    if (a.kind == "u" and b.kind == "i" and a.bits == 64) or (b.kind == "u" and a.kind == "i" and b.bits == 64):
        return int64  # NumPy would go to float64; integer code never wants that
    return from_numpy(np.promote_types(a.np, b.np))


def weak_promote(tile: DType, py_value) -> DType:
    """The dtype of `tile <op> python_scalar`: a Python scalar adopts the tile's dtype when it is of
    the same kind or a narrower one (NEP 50 'weak' scalars); an int tile with a float scalar
    becomes float32, the language's default float."""
    if isinstance(py_value, bool):
        return tile
    if isinstance(py_value, int):
        return int32 if tile.is_bool else tile
    if isinstance(py_value, float):
        return tile if tile.is_float else float32
    raise TypeError(py_value)


def scalar_dtype(py_value) -> DType:
    """The dtype a Python scalar takes when it becomes a tile on its own."""
    if isinstance(py_value, (bool, np.bool_)):
        return bool_
    if isinstance(py_value, (int, np.integer)):
        return int32 if -2**31 <= int(py_value) < 2**31 else int64
    if isinstance(py_value, (float, np.floating)):
        return float32
    raise TypeError(py_value)
