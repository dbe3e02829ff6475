"""DLPack (the unversioned "dltensor" capsule every producer still offers) both ways, through ctypes:
`export` a device array's memory to another library, `read` a capsule from another library (a CUDA
array that has `__dlpack__` but no `__cuda_array_interface__`, e.g. JAX)."""
from __future__ import annotations

import ctypes

import numpy as np

from ..errors import TileLaunchError
from ..ir import dtypes as D

CPU, CUDA, CUDA_HOST, CUDA_MANAGED = 1, 2, 3, 13
CUDA_DEVICE_TYPES = (CUDA, CUDA_MANAGED)
# DLDataTypeCode: kDLInt 0, kDLUInt 1, kDLFloat 2, kDLBfloat 4, kDLBool 6, kDLFloat8_e4m3fn 10, kDLFloat8_e5m2 12
_CODES = {"i": 0, "u": 1, "f": 2, "b": 6}
_NARROW = {"bfloat16": 4, "float8_e4m3fn": 10, "float8_e5m2": 12}


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32), ("dtype", _DataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


class _Managed(ctypes.Structure):
    pass


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_Managed._fields_ = [("dl_tensor", _Tensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]

_api = ctypes.pythonapi
_api.PyCapsule_New.restype = ctypes.py_object
_api.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_api.PyCapsule_IsValid.restype = ctypes.c_int
_api.PyCapsule_IsValid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_api.PyCapsule_GetPointer.restype = ctypes.c_void_p
_api.PyCapsule_GetPointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_api.PyCapsule_SetName.restype = ctypes.c_int
_api.PyCapsule_SetName.argtypes = [ctypes.c_void_p, ctypes.c_char_p]

_LIVE = {}  # address of an exported DLManagedTensor -> what it points into, until its deleter runs


def _release(addr):
    _LIVE.pop(addr, None)


_deleter = _DELETER(_release)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _capsule_destructor(capsule):  # a capsule nobody consumed still owns its tensor
    if _api.PyCapsule_IsValid(capsule, b"dltensor"):
        _release(_api.PyCapsule_GetPointer(capsule, b"dltensor"))


def dtype_code(dtype: np.dtype):
    dt = D.from_numpy(dtype)
    if dt is not None and dt.name in _NARROW:
        return _NARROW[dt.name]
    if dtype.kind not in _CODES:
        raise TileLaunchError(f"dtype {dtype} has no DLPack code")
    return _CODES[dtype.kind]


def _from_code(code, bits):
    for name, c in _NARROW.items():
        if c == code:
            return D.from_name(name).np
    kind = {v: k for k, v in _CODES.items()}.get(code)
    if kind is None:
        raise TileLaunchError(f"DLPack dtype code {code} is not a dtype tile kernels support")
    return np.dtype(bool) if kind == "b" else np.dtype(f"{kind}{bits // 8}")


def export(ptr, shape, strides, dtype, device, owner):
    """A "dltensor" capsule for memory at `ptr` (strides in bytes); `owner` lives until the consumer's
    deleter runs. `device` is (device type, id)."""
    dtype = np.dtype(dtype)
    m = _Managed()
    dims = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    steps = (ctypes.c_int64 * max(len(shape), 1))(*[s // dtype.itemsize for s in strides])
    m.dl_tensor = _Tensor(ptr, _Device(*device), len(shape), _DataType(dtype_code(dtype), dtype.itemsize * 8, 1),
                          dims, steps, 0)
    m.deleter = _deleter
    addr = ctypes.addressof(m)
    _LIVE[addr] = (m, dims, steps, owner)
    return _api.PyCapsule_New(addr, b"dltensor", ctypes.cast(_capsule_destructor, ctypes.c_void_p))


class Imported:
    """What `read` found: pointer, shape, byte strides, dtype, device; it keeps the producer's tensor
    alive and calls its deleter when collected."""

    def __init__(self, capsule):
        addr = _api.PyCapsule_GetPointer(ctypes.c_void_p(id(capsule)), b"dltensor")
        if not addr:
            raise TileLaunchError("__dlpack__ returned a capsule that is not an unconsumed 'dltensor'")
        _api.PyCapsule_SetName(ctypes.c_void_p(id(capsule)), b"used_dltensor")  # ours now
        self._capsule, self._managed = capsule, _Managed.from_address(addr)
        t = self._managed.dl_tensor
        if t.dtype.lanes != 1:
            raise TileLaunchError("vector (multi-lane) DLPack dtypes are not supported")
        self.dtype = _from_code(t.dtype.code, t.dtype.bits)
        self.shape = tuple(t.shape[i] for i in range(t.ndim))
        if t.strides:
            self.strides = tuple(t.strides[i] * self.dtype.itemsize for i in range(t.ndim))
        else:  # NULL strides: C order
            self.strides = tuple(int(np.prod(self.shape[i + 1:], dtype=np.int64)) * self.dtype.itemsize
                                 for i in range(t.ndim))
        self.ptr = (t.data or 0) + t.byte_offset
        self.device = (t.device.device_type, t.device.device_id)

    def __del__(self):
        m = getattr(self, "_managed", None)
        if m is not None and m.deleter:
            m.deleter(ctypes.addressof(m))


def read(x, stream=None):
    """Read `x.__dlpack__()` (legacy capsule; `stream` is the consumer's stream handle, per the protocol)."""
    capsule = x.__dlpack__() if stream is None else x.__dlpack__(stream=stream)
    return Imported(capsule)
