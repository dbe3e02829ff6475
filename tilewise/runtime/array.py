"""`tw.DeviceArray`: an n-d view of device memory (pointer, shape, byte strides, dtype, device), and
`tw.to_device`, `tw.to_host`, `tw.empty`. It is also how the runtime holds arrays from other libraries
(CuPy, PyTorch, anything with `__cuda_array_interface__` or a CUDA `__dlpack__`) during a launch."""
from __future__ import annotations

import math

import numpy as np

from ..errors import TileLaunchError
from ..ir import dtypes as D
from . import dlpack
from .device import Device, resolve_stream


def _c_strides(shape, itemsize):
    out, step = [], itemsize
    for n in reversed(shape):
        out.append(step)
        step *= max(n, 1)
    return tuple(reversed(out))


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if D.from_numpy(dtype) is None:
        raise TileLaunchError(f"dtype {dtype} is not a dtype tile kernels support")
    return dtype


class DeviceArray:
    """Device memory seen as an array. Views (`a[1:, ::2]`, `a.T`) share the memory; `owner` keeps it."""

    def __init__(self, device, ptr, shape, dtype, strides=None, owner=None, readonly=False):
        self.device = Device(device)
        self.ptr = int(ptr)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.strides = tuple(int(s) for s in strides) if strides is not None else \
            _c_strides(self.shape, self.dtype.itemsize)
        self.owner = owner
        self.readonly = bool(readonly)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    @property
    def is_c_contiguous(self):
        return self.size <= 1 or all(s == c for n, s, c in zip(self.shape, self.strides,
                                                               _c_strides(self.shape, self.itemsize)) if n != 1)

    def _span(self):
        """(lowest, highest + 1) byte addresses any element occupies."""
        if self.size == 0:
            return self.ptr, self.ptr
        lo = self.ptr + sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s < 0)
        hi = self.ptr + sum(s * (n - 1) for n, s in zip(self.shape, self.strides) if s > 0) + self.itemsize
        return lo, hi

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "data": (self.ptr if self.size else 0, self.readonly),
                "strides": None if self.is_c_contiguous else self.strides}

    def __dlpack_device__(self):
        return (dlpack.CUDA, self.device.ordinal)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        if copy:
            raise BufferError("tw.DeviceArray exports its memory without copying (copy=True is not supported)")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"tw.DeviceArray lives on {self.device.name}; it cannot export to {dl_device}")
        if any(s % self.itemsize for s in self.strides):
            raise BufferError("DLPack strides count elements; this view's strides are not whole elements")
        if stream not in (None, -1):  # the consumer's stream waits for everything queued on the device
            self.device.synchronize()
        return dlpack.export(self.ptr, self.shape, self.strides, self.dtype, self.__dlpack_device__(), self)

    def to_host(self, stream=None):
        """A NumPy copy (waits for the copy, and so for the work queued before it on `stream`)."""
        s = resolve_stream(stream, self.device)
        lo, hi = self._span()
        raw = np.empty(hi - lo, np.uint8)
        if hi > lo:
            self.device.driver.copy_d2h(raw, lo, s)
        s.synchronize()
        if self.is_c_contiguous:
            return raw.view(self.dtype).reshape(self.shape)
        return np.array(np.ndarray(self.shape, self.dtype, raw, self.ptr - lo, self.strides))

    def __array__(self, dtype=None, copy=None):
        out = self.to_host()
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key):
        """Basic indexing (ints, slices, None, ...): a view of the same memory."""
        keys = key if isinstance(key, tuple) else (key,)
        if not all(isinstance(k, (int, np.integer, slice, type(None), type(Ellipsis))) for k in keys):
            raise TileLaunchError("tw.DeviceArray supports basic indexing only (ints, slices, None, ...); "
                                  "copy to the host for fancy indexing")
        # NumPy does the arithmetic on a dummy array of this layout; it never touches the memory.
        dummy = np.lib.stride_tricks.as_strided(np.zeros(1, self.dtype), self.shape, self.strides)
        view = dummy[key]
        offset = view.__array_interface__["data"][0] - dummy.__array_interface__["data"][0]
        return DeviceArray(self.device, self.ptr + offset, view.shape, self.dtype, view.strides, self.owner,
                           self.readonly)

    @property
    def T(self):  # noqa: N802 - NumPy's name
        return DeviceArray(self.device, self.ptr, self.shape[::-1], self.dtype, self.strides[::-1], self.owner,
                           self.readonly)

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __repr__(self):
        return f"<tw.DeviceArray shape={self.shape} dtype={self.dtype} on {self.device.name}>"


def empty(shape, dtype, device=None, stream=None):
    """An uninitialised device array (C order)."""
    dev = Device(device)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    dtype = _check_dtype(dtype)
    alloc = dev.driver.alloc(math.prod(shape) * dtype.itemsize, resolve_stream(stream, dev))
    return DeviceArray(dev, alloc.ptr, shape, dtype, owner=alloc)


def to_device(x, device=None, stream=None):
    """Copy a host array (NumPy, or anything np.asarray takes) to a new C-order device array. The copy
    is queued on `stream`; `x` may be changed as soon as this returns."""
    arr = np.asarray(x)
    out = empty(arr.shape, arr.dtype, device, stream)
    if arr.size:
        out.device.driver.copy_h2d(out.ptr, np.ascontiguousarray(arr), resolve_stream(stream, out.device))
    return out
