"""`tw.launch` and `tw.compile`: specialise a kernel for its arguments, pick a backend, run."""
from __future__ import annotations

import threading
import time

import numpy as np

from .. import backends
from ..errors import TileLaunchError
from ..frontend.kernel import Kernel
from ..ir import print_function
from .args import DeviceArguments, classify, normalize_grid
from .device import check_stream


def _check_kernel(kernel):
    if not isinstance(kernel, Kernel):
        raise TileLaunchError(f"expected a @tw.kernel function, got {type(kernel).__name__}; "
                              "decorate it with @tw.kernel")


def _check_writable(fn, values, names):
    for i in fn.written_params():
        v = values[i]
        if not v.flags.writeable:
            raise TileLaunchError(f"the kernel writes to '{names[i]}', which is read-only; pass a writable "
                                  "array (e.g. a .copy())")


# The profiler's hook (tilewise.profiler adds a callable while a profile is open). With none, a launch
# pays one truthiness test; with some, `_launch_observed` times the launch and calls each listener
# twice with a LaunchEvent: `(ev, False)` just before a compile (so it can note what the disk cache
# does meanwhile) and `(ev, True)` when the launch has been issued.
_listeners: list = []


class LaunchEvent:
    """What one launch tells the profiler. Times are `time.perf_counter()` seconds; a device launch
    also leaves its start and end events (recorded on the stream) in `device_events`."""
    __slots__ = ("kernel", "grid", "backend", "fn", "values", "thread", "start", "end", "compile_start",
                 "compile_s", "compiled", "device_events", "device", "extra")

    def __init__(self, kernel, grid):
        self.kernel, self.grid, self.thread = kernel, grid, threading.get_ident()
        self.backend = self.fn = self.values = self.device_events = self.device = self.extra = None
        self.start = self.end = self.compile_start = None
        self.compile_s, self.compiled = 0.0, False

    def notify(self, done):
        for listener in tuple(_listeners):
            listener(self, done)

    def compile(self, build):
        """Run `build()` (lower and compile) timed, telling the listeners first."""
        self.notify(False)
        self.compile_start = time.perf_counter()
        entry = build()
        self.compile_s, self.compiled = time.perf_counter() - self.compile_start, True
        return entry


def _prepare(kernel, args, backend_name, target=None, ev=None):
    """`target` is the full target string where it says more than the backend ("cuda:sm_90")."""
    specs, values, names = classify(kernel, args)
    key = (specs, target or backend_name)
    entry = kernel.runtime_cache.get(key)
    if entry is None:
        def build():
            fn = kernel.lower(specs)
            backend = backends.get(backend_name)
            exe = backend.compile(fn, target) if target else backend.compile(fn)
            return (fn, exe)
        entry = kernel.runtime_cache[key] = build() if ev is None else ev.compile(build)
    return entry, values, names


def launch(stream, grid, kernel, args):
    """Run `kernel` once per block of `grid` (1-3 ints) on `args`. Host arrays run on the backend
    named by TILEWISE_BACKEND; device arrays on their device, queued on `stream`. Every argument is
    checked before any block runs."""
    if _listeners:
        return _launch_observed(stream, grid, kernel, args)
    _check_kernel(kernel)
    if stream is not None:
        check_stream(stream)
    grid = normalize_grid(grid)
    try:
        (fn, exe), values, names = _prepare(kernel, args, backends.host_backend_name())
    except DeviceArguments:
        from .device_launch import launch_device
        return launch_device(stream, grid, kernel, args)
    _check_writable(fn, values, names)
    if getattr(exe, "on_device", False):  # the cuda backend given host arrays: run on the default device
        from .device_launch import run_host_arrays
        run_host_arrays(fn, exe, values, grid)
    else:
        exe.run(values, grid)


def _launch_observed(stream, grid, kernel, args):
    """`launch` while a profile is open: the same steps, timed, then reported to the listeners."""
    _check_kernel(kernel)
    if stream is not None:
        check_stream(stream)
    grid = normalize_grid(grid)
    ev = LaunchEvent(kernel, grid)
    ev.backend = backends.host_backend_name()
    try:
        (fn, exe), values, names = _prepare(kernel, args, ev.backend, ev=ev)
    except DeviceArguments:
        from .device_launch import launch_device
        launch_device(stream, grid, kernel, args, ev)
        ev.notify(True)
        return
    _check_writable(fn, values, names)
    ev.fn, ev.values = fn, values
    if getattr(exe, "on_device", False):
        from .device_launch import run_host_arrays
        ev.start = time.perf_counter()
        run_host_arrays(fn, exe, values, grid, ev)
    else:
        ev.start = time.perf_counter()
        exe.run(values, grid)
    ev.end = time.perf_counter()
    ev.notify(True)


def array_layouts(values):
    """Per IR parameter, `(shape, strides in elements)` of a host array, the value of an integer scalar,
    else None: what the lints need of the arguments (kept instead of the arrays, which a CompiledKernel
    must not hold alive)."""
    out = []
    for v in values:
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            out.append(int(v))
            continue
        strides, shape, itemsize = getattr(v, "strides", None), getattr(v, "shape", None), \
            getattr(getattr(v, "dtype", None), "itemsize", 0)
        ok = strides is not None and shape is not None and itemsize and all(s % itemsize == 0 for s in strides)
        out.append((tuple(shape), tuple(s // itemsize for s in strides)) if ok else None)
    return out


class CompiledKernel:
    """What `tw.compile` returns: the IR text and whatever the backend exposes. `layouts` (from
    `array_layouts`) tells the lints the arguments' shapes and strides."""

    def __init__(self, fn, exe, target, layouts=None):
        self.function, self.executable, self.target = fn, exe, target
        self.ir = print_function(fn)
        self.layouts, self._lints = layouts, None

    @property
    def lints(self):
        """The static analyzer's findings (tilewise.ir.lints) for this specialisation and target."""
        if self._lints is None:
            from ..ir.lints import lint
            self._lints = lint(self.function, self.target, self.resources, self.layouts)
        return self._lints

    # Read from the executable on demand: the CPU backend's `code` may need the optimiser run again.
    code = property(lambda self: self.executable.code)
    binary = property(lambda self: self.executable.binary)
    resources = property(lambda self: self.executable.resources)
    # Assembly where the backend makes some: x86/AArch64 for cpu, PTX for cuda (None elsewhere).
    asm = property(lambda self: getattr(self.executable, "asm", None))

    def __repr__(self):
        return f"<CompiledKernel {self.function.name} for {self.target}>"


def compile(kernel, args, target=None):  # noqa: A001 - the public name follows the design
    """Specialise and compile without launching; `target` is a backend name ("reference", ...)."""
    _check_kernel(kernel)
    if target is None or target.startswith("cuda:"):
        try:
            classify(kernel, args)
        except DeviceArguments:  # device arrays: compile for their device, or for `target`
            from .device_launch import compile_device
            fn, exe, target = compile_device(kernel, args, target)
            return CompiledKernel(fn, exe, target)
    target = target or backends.host_backend_name()
    (fn, exe), values, _ = _prepare(kernel, args, target.split(":")[0], target if ":" in target else None)
    return CompiledKernel(fn, exe, target, array_layouts(values))
