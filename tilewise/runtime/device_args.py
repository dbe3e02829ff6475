"""Launch arguments that live on a GPU -> specialisation facts and tw.DeviceArray views, all on one
device, with every check done before any work (args.py does the same for host arguments); and
`tw.to_host`, which takes any of them."""
from __future__ import annotations

import numpy as np

from ..errors import TileLaunchError
from ..frontend.kernel import ArrayListSpec, ArraySpec, ConstSpec
from ..ir import dtypes as D
from . import dlpack, driver
from .args import SUPPORTED_DTYPES, _classify_one, _const_value, _is_array, _plan_for, is_device_array, stride_error
from .array import DeviceArray
from .device import Device


def _pointer_device(ptr, what):
    for drv in driver.all_drivers():
        if drv.kind == "emulated" and drv.owns(ptr):
            return Device(f"cuda-emulated:{drv.ordinal}")
    if not driver.emulation_requested():
        from .driver_cuda import pointer_ordinal
        ordinal = pointer_ordinal(ptr)
        if ordinal is not None:
            return Device(ordinal)
    raise TileLaunchError(f"{what} points at memory ({ptr:#x}) that no CUDA device owns")


def device_view(x, what):
    """A tw.DeviceArray over the memory of device array `x` (which it keeps alive), or a TileLaunchError."""
    if isinstance(x, DeviceArray):
        return x
    if hasattr(x, "__cuda_array_interface__"):
        cai = x.__cuda_array_interface__
        if cai.get("mask") is not None:
            raise TileLaunchError(f"{what} is a masked CUDA array; tile kernels take unmasked arrays")
        try:
            dtype = np.dtype(cai["typestr"])
        except TypeError:
            dtype = None
        if dtype is None or D.from_numpy(dtype) is None:
            raise TileLaunchError(f"{what} has dtype {cai['typestr']}, which tile kernels do not support; "
                                  f"use one of: {SUPPORTED_DTYPES}")
        ptr, readonly = cai["data"]
        shape = tuple(cai["shape"])
        device = _pointer_device(ptr, what) if ptr else Device()
        return DeviceArray(device, ptr, shape, dtype, cai.get("strides"), owner=x, readonly=readonly)
    im = dlpack.read(x)
    if D.from_numpy(im.dtype) is None:
        raise TileLaunchError(f"{what} has dtype {im.dtype}, which tile kernels do not support")
    prefix = "cuda-emulated" if driver.emulation_requested() else "cuda"
    return DeviceArray(Device(f"{prefix}:{im.device[1]}"), im.ptr, im.shape, im.dtype, im.strides, owner=im)


def _device_array_spec(a, what):
    if a.ndim == 0:
        raise TileLaunchError(f"{what} is a 0-d array; pass a Python scalar or a 1-element array")
    if any(s % a.itemsize for s in a.strides):
        raise stride_error(what, a)
    return ArraySpec(D.from_numpy(a.dtype), a.ndim, a.strides[-1] == a.itemsize, a.ptr % 16 == 0)


def classify_device(kernel, args):
    """`classify` for a launch with device arrays: (specs, values, names, device), where array values
    are tw.DeviceArrays, all on one device; a host array among them is an error."""
    plan = _plan_for(kernel, args)
    specs, values, names, first = [], [], [], None

    def device_array(x, what):
        nonlocal first
        if not is_device_array(x):
            where = f"the other arrays are on {first[1].device.name}" if first else "other arguments are device arrays"
            raise TileLaunchError(f"{what} is a host array ({type(x).__name__}) but {where}; pass device arrays "
                                  "only (copy it with tw.to_device(...)), or host arrays only")
        a = device_view(x, what)
        if first is None:
            first = (what, a)
        elif a.device is not first[1].device:
            raise TileLaunchError(f"{what} is on {a.device.name} but {first[0]} is on {first[1].device.name}; "
                                  "all arrays of a launch must be on one device")
        return a

    for (name, is_const, ann), x in zip(plan, args):
        what = f"argument '{name}' of kernel '{kernel.__name__}'"
        if is_const:
            specs.append(ConstSpec(_const_value(name, x, ann)))
        elif _is_array(x):
            a = device_array(x, what)
            specs.append(_device_array_spec(a, what))
            values.append(a)
            names.append(name)
        elif isinstance(x, (list, tuple)) and x and all(_is_array(e) for e in x):
            arrs = [device_array(e, f"{what}[{i}]") for i, e in enumerate(x)]
            specs.append(ArrayListSpec(tuple(_device_array_spec(a, f"{what}[{i}]") for i, a in enumerate(arrs))))
            values.extend(arrs)
            names.extend(f"{name}[{i}]" for i in range(len(arrs)))
        else:
            _classify_one(kernel, name, is_const, ann, x, specs, values, names)
    if first is None:
        raise TileLaunchError(f"kernel '{kernel.__name__}' got no device arrays")
    return tuple(specs), values, names, first[1].device


def to_host(x, stream=None):
    """A NumPy copy of a device array (ours, or any with __cuda_array_interface__ / a CUDA __dlpack__);
    NumPy arrays come back as they are."""
    if isinstance(x, np.ndarray):
        return x
    if not isinstance(x, DeviceArray):
        x = device_view(x, "the argument of tw.to_host")
    return x.to_host(stream)
