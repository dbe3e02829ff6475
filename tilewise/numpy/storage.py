"""Where an array's memory lives, and the layout operations the kernels need on it, for both kinds:
host memory (a NumPy array: the CPU device) and device memory (a runtime DeviceArray: a GPU, or the
emulated GPU). Views are new (pointer, shape, strides) over the same memory; nothing here copies data
except `to_host`, `to_device` and `copy`, which say so."""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..runtime import array as device_arrays
from ..runtime.array import DeviceArray
from ..runtime.device import Device

CPU = "cpu"


def on_device(a):
    return isinstance(a, DeviceArray)


def device_of(a):
    """"cpu" for host memory, else the runtime Device."""
    return a.device if isinstance(a, DeviceArray) else CPU


def device_name(device):
    return CPU if device == CPU else device.name


def parse_device(spec):
    """"cpu" or a runtime Device, from what a user writes ("cpu", "cuda", "cuda:1", a Device, None=cpu)."""
    if spec is None or spec == CPU or (isinstance(spec, str) and spec.lower() == CPU):
        return CPU
    return Device(spec)


def empty(shape, dtype, device=CPU):
    shape = tuple(shape)
    if device == CPU:
        return np.empty(shape, dtype)
    return device_arrays.empty(shape, dtype, device)


def strided(a, shape, strides):
    """A view of `a`'s memory with this shape and these byte strides (stride 0 repeats an element)."""
    if isinstance(a, DeviceArray):
        return DeviceArray(a.device, a.ptr, shape, a.dtype, strides, owner=a.owner or a, readonly=a.readonly)
    return as_strided(a, shape, strides)


def broadcast(a, shape):
    """`a` broadcast to `shape` (a view with stride-0 dimensions), as np.broadcast_to."""
    if not isinstance(a, DeviceArray):
        return np.broadcast_to(a, shape)
    lead = len(shape) - a.ndim
    strides = [0] * lead + [0 if n == 1 and m != 1 else s for n, m, s in zip(a.shape, shape[lead:], a.strides)]
    return DeviceArray(a.device, a.ptr, shape, a.dtype, tuple(strides), owner=a.owner or a, readonly=True)


def transpose(a, order):
    if not isinstance(a, DeviceArray):
        return np.transpose(a, order)
    return strided(a, tuple(a.shape[k] for k in order), tuple(a.strides[k] for k in order))


def view(a, np_function, *args, **kwargs):
    """`np_function(a, ...)` where it gives a view (reshape, squeeze, expand_dims, indexing...). On a device
    the layout comes from NumPy working on a stand-in with `a`'s layout (never read), so the result is
    exactly NumPy's; None where NumPy would have to copy."""
    if not isinstance(a, DeviceArray):
        return np_function(a, *args, **kwargs)
    base = np.zeros(1, a.dtype)
    standin = as_strided(base, a.shape, a.strides)
    v = np_function(standin, *args, **kwargs)
    if not isinstance(v, np.ndarray) or not _views_of(v, (standin, base)):
        return None
    offset = v.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    return DeviceArray(a.device, a.ptr + offset, v.shape, a.dtype, v.strides, owner=a.owner or a,
                       readonly=a.readonly)


def _views_of(v, owners):
    """Whether `v` is a view of one of `owners` (NumPy's base chain; a copy has a base of its own)."""
    while v is not None:
        if any(v is o for o in owners):
            return True
        v = v.base if isinstance(v.base, np.ndarray) else None
    return False


def contiguous_reshape(a, shape):
    """A C-contiguous array (one this module allocated) seen with another shape."""
    if not isinstance(a, DeviceArray):
        return a.reshape(shape)
    return DeviceArray(a.device, a.ptr, shape, a.dtype, owner=a.owner or a, readonly=a.readonly)


def may_share_memory(a, b):
    if isinstance(a, DeviceArray) != isinstance(b, DeviceArray):
        return False
    if not isinstance(a, DeviceArray):
        return np.may_share_memory(a, b)
    (lo1, hi1), (lo2, hi2) = a._span(), b._span()
    return lo1 < hi2 and lo2 < hi1


def same_view(a, b):
    """Whether two arrays of one shape walk the same elements in the same order."""
    return address(a) == address(b) and a.strides == b.strides


def address(a):
    return a.ptr if isinstance(a, DeviceArray) else a.__array_interface__["data"][0]


def memory_id(a):
    """One id per allocation: writes into it must first compute pending values that read it."""
    if isinstance(a, DeviceArray):
        return id(a.owner) if a.owner is not None else id(a)
    while isinstance(a.base, np.ndarray):
        a = a.base
    return id(a)


def to_host(a):
    """A NumPy array of the values (device memory is copied; host memory is returned as it is)."""
    return a.to_host() if isinstance(a, DeviceArray) else a


def to_device(a, device):
    """`a` (host or device memory) on `device`, copied where it is elsewhere."""
    if device == CPU:
        return to_host(a)
    if isinstance(a, DeviceArray) and a.device is device:
        return a
    return device_arrays.to_device(np.ascontiguousarray(to_host(a)), device)
