"""Launching on a CUDA device (real or emulated): compile for the device's architecture, pack the
kernel parameters exactly as the generated kernel declares them, launch on a stream, and report a
failed `tw.assert_`. Also the `cuda` backend's host-array path: copy, launch, copy back."""
from __future__ import annotations

import ctypes
import time

import numpy as np

from .. import backends
from ..errors import TileLaunchError
from ..ir.types import ArrayType
from .array import DeviceArray
from .device import Device, resolve_stream
from .device_args import classify_device

_STATUS_WORDS = 4  # tw_status: the failed assert's number, then its block (x, y, z)


def compiled(kernel, specs, device, ev=None):
    """(ir.Function, executable) for `device`; cached per kernel under the specs and the device, since
    the device decides both the architecture and the backend (cuda, or cuda-emulated). `ev`: the
    profiler's LaunchEvent (launch.py), which times a compile."""
    key = (specs, f"{device.target}@{device.name}")
    entry = kernel.runtime_cache.get(key)
    if entry is None:
        def build():
            fn = kernel.lower(specs)
            return (fn, backends.get(device.driver.backend).compile(fn, device.target))
        entry = kernel.runtime_cache[key] = build() if ev is None else ev.compile(build)
    return entry


def compile_device(kernel, args, target):
    """`tw.compile` with device arrays: (fn, exe, target) for `target`, else for the arrays' device."""
    specs, _, _, device = classify_device(kernel, args)
    if target is None:
        return (*compiled(kernel, specs, device), device.target)
    key = (specs, target)
    entry = kernel.runtime_cache.get(key)
    if entry is None:
        fn = kernel.lower(specs)
        entry = kernel.runtime_cache[key] = (fn, backends.get("cuda").compile(fn, target))
    return (*entry, target)


def launch_device(stream, grid, kernel, args, ev=None):
    """`tw.launch` for device arrays (`grid` already normalised; `ev` while a profile is open)."""
    specs, values, names, device = classify_device(kernel, args)
    s = resolve_stream(stream, device)
    if ev is not None:
        ev.backend = device.driver.backend
    fn, exe = compiled(kernel, specs, device, ev)
    for i in fn.written_params():
        if values[i].readonly:
            raise TileLaunchError(f"the kernel writes to '{names[i]}', which is a read-only device array")
    run(device, fn, exe, values, grid, s, ev)


def pack(params, values, status_ptr):
    """One buffer per kernel parameter (tw_array: pointer, shape, strides in elements; a scalar in its
    dtype), then the status pointer: the storage cuLaunchKernel reads the parameters from."""
    bufs = []
    for p, a in zip(params, values):
        if isinstance(p.type, ArrayType):
            bufs.append(np.array([a.ptr, *a.shape, *(s // a.itemsize for s in a.strides)], np.int64))
        else:
            bufs.append(np.array(a, dtype=p.type.dtype.np).reshape(1))
    bufs.append(np.array([status_ptr], np.uint64))
    return bufs


class _DeviceState:
    """Per device: the status words every launch gets, and the kernels loaded on it."""

    def __init__(self, device):
        drv = device.driver
        self.status = drv.alloc(_STATUS_WORDS * 4, drv.default_stream())
        self.zero(device)
        drv.default_stream().synchronize()
        self.loaded = {}

    def zero(self, device):
        device.driver.copy_h2d(self.status.ptr, np.zeros(_STATUS_WORDS, np.int32), device.driver.default_stream())


def _state(device):
    if device._status is None:
        device._status = _DeviceState(device)
    return device._status


def run(device, fn, exe, values, grid, stream, ev=None):
    state = _state(device)
    loaded = state.loaded.get(id(exe))
    if loaded is None:
        loaded = state.loaded[id(exe)] = (device.driver.load(exe), exe)  # exe kept: id() stays unique
    bufs = pack(fn.params, values, state.status.ptr)
    if ev is not None:  # the profiler's events: recorded on the stream, read later (no synchronisation)
        ev.fn, ev.values, ev.device = fn, values, device.name
        ev.device_events = (device.driver.create_event(), device.driver.create_event())
        ev.device_events[0].record(stream)
        ev.start = time.perf_counter()
    device.driver.launch(loaded[0], grid, exe.resources.get("threads_per_cta", 128), bufs, stream,
                         prints=exe.prints, keep=values, shared=exe.resources.get("dynamic_shared_bytes", 0))
    if ev is not None:
        ev.device_events[1].record(stream)
        ev.end = time.perf_counter()
    # A kernel that asserts or prints waits for itself: the failure or the output belongs to this call.
    if exe.asserts or exe.prints:
        stream.synchronize()
    if exe.asserts:
        status = np.zeros(_STATUS_WORDS, np.int32)
        device.driver.copy_d2h(status, state.status.ptr, stream)
        stream.synchronize()
        if status[0]:
            state.zero(device)
            device.driver.default_stream().synchronize()
            from ..backends.cuda.emulator import check_status
            check_status(status, exe.asserts)


def _regions(arrays):
    """Group host arrays into disjoint byte ranges [lo, hi), so arrays that share memory share it on
    the device too (an in-place kernel passes one array twice)."""
    spans = sorted((*np.lib.array_utils.byte_bounds(a), i) for i, a in enumerate(arrays))
    regions = []  # [lo, hi, [indices]]
    for lo, hi, i in spans:
        if regions and lo < regions[-1][1]:
            regions[-1][1] = max(regions[-1][1], hi)
            regions[-1][2].append(i)
        else:
            regions.append([lo, hi, [i]])
    return regions


def run_host_arrays(fn, exe, args, grid, ev=None):
    """The `cuda` backend's run for host arrays: copy each array's memory to the default device (the
    emulated one under TILEWISE_EMULATE_GPU=1), launch, copy back what the kernel may write. Layouts,
    strides, alignment mod 256 and aliasing stay exactly as on the host."""
    device = Device()
    stream = device.driver.default_stream()
    arrays = [(k, a) for k, a in enumerate(args) if isinstance(a, np.ndarray)]
    values = list(args)
    written = fn.written_params()
    back = []
    for lo, hi, members in _regions([a for _, a in arrays]):
        alloc = device.driver.alloc(hi - lo + 256, stream)
        base = alloc.ptr + lo % 256
        raw = np.ctypeslib.as_array((ctypes.c_uint8 * (hi - lo)).from_address(lo)) if hi > lo else None
        if raw is not None:
            device.driver.copy_h2d(base, raw, stream)
        for m in members:
            k, a = arrays[m]
            values[k] = DeviceArray(device, base + a.ctypes.data - lo, a.shape, a.dtype, a.strides, owner=alloc)
        if raw is not None and any(arrays[m][0] in written for m in members):
            back.append((raw, base))
    run(device, fn, exe, values, grid, stream, ev)
    for raw, base in back:  # raw views the host arrays' own memory
        device.driver.copy_d2h(raw, base, stream)
    stream.synchronize()
