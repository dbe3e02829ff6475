"""The emulated device: host memory stands in for device memory, a stream is a worker thread that runs
its work in order (so a missing synchronisation reads stale data here as it would on a GPU), events
record host timestamps, and kernels run through the cuda-emulated backend's host build of the
generated CUDA C++. Copies are checked against the device's allocations, so a runtime bug that
addresses memory it does not own fails loudly instead of corrupting the process."""
from __future__ import annotations

import ctypes
import itertools
import os
import queue
import threading
import time
import types
import weakref

import numpy as np

from ..errors import TileLaunchError
from .driver_base import DeviceDriver, DriverEvent, DriverStream

_ALIGN = 256  # what cudaMalloc guarantees
_HANDLES = itertools.count(0x7E00_0000)  # fake cudaStream_t values, never 0 (the legacy default stream)


class _Worker:
    """The thread behind one stream; holds no reference to the stream object, so that can be collected."""

    def __init__(self):
        self.queue = queue.Queue()
        self.errors = []
        threading.Thread(target=self._run, daemon=True, name="tilewise-emulated-stream").start()

    def _run(self):
        while True:
            work = self.queue.get()
            try:
                if work is None:
                    return
                work()
            except BaseException as e:  # kept for the next synchronize, as a GPU keeps a launch's error
                self.errors.append(e)
            finally:
                self.queue.task_done()


_STREAMS = weakref.WeakValueDictionary()  # handle -> stream, so a handle (from __cuda_stream__) finds it


class EmulatedStream(DriverStream):
    def __init__(self, device):
        self.device = device
        self.handle = next(_HANDLES)
        self._worker = _Worker()
        _STREAMS[self.handle] = self
        weakref.finalize(self, self._worker.queue.put, None)

    def enqueue(self, work):
        self._worker.queue.put(work)

    def synchronize(self):
        self._worker.queue.join()
        if self._worker.errors:
            error = self._worker.errors[0]
            self._worker.errors.clear()
            raise error

    def wait(self, event):
        done = event._done
        if done is not None:  # waiting on an event never recorded is a no-op, as in CUDA
            self.enqueue(done.wait)


class EmulatedEvent(DriverEvent):
    def __init__(self):
        self._done = None  # a fresh threading.Event per record, so a wait sees the record it followed
        self.time = None

    def record(self, stream):
        done = self._done = threading.Event()

        def mark():
            self.time = time.perf_counter()
            done.set()
        stream.enqueue(mark)

    def synchronize(self):
        if self._done is not None:
            self._done.wait()

    def query(self):
        return self._done is None or self._done.is_set()

    def elapsed_ms(self, start):
        if not (start.query() and self.query()) or start.time is None or self.time is None:
            raise TileLaunchError("elapsed time needs two recorded, completed events; record both and "
                                  "synchronize the later one first")
        return (self.time - start.time) * 1e3


class _Allocation:
    def __init__(self, driver, nbytes):
        self._raw = np.empty(nbytes + _ALIGN, np.uint8)
        self.ptr = -self._raw.ctypes.data % _ALIGN + self._raw.ctypes.data
        self.nbytes = nbytes
        driver._allocations[self.ptr] = (nbytes, weakref.ref(self))
        weakref.finalize(self, driver._allocations.pop, self.ptr, None)


class EmulatedDriver(DeviceDriver):
    kind = "emulated"
    backend = "cuda-emulated"

    def __init__(self, ordinal):
        self.ordinal = ordinal
        self.arch = os.environ.get("TILEWISE_EMULATED_ARCH", "sm_80")
        self.name = f"tilewise emulated CUDA device {ordinal} ({self.arch})"
        self._allocations = {}  # pointer -> size of every live allocation
        self._default = EmulatedStream(self)
        self._streams = weakref.WeakSet()  # for a device-wide synchronize

    def info(self):
        from ..backends.cuda import emulator
        return {"name": self.name, "arch": self.arch, "driver": "tilewise host emulator",
                "compiler": emulator._compiler_version(emulator.compiler())}

    def alloc(self, nbytes, stream):
        return _Allocation(self, max(int(nbytes), 1))

    def _find(self, ptr, nbytes=1):
        for base, (size, ref) in list(self._allocations.items()):
            if base <= ptr and ptr + nbytes <= base + size:
                return ref()
        return None

    def owns(self, ptr, nbytes=1):
        return self._find(ptr, nbytes) is not None

    def _check(self, ptr, nbytes, what):
        """The allocation holding [ptr, ptr + nbytes); queued work keeps it, so memory outlives its users."""
        alloc = self._find(ptr, nbytes)
        if alloc is None:
            raise TileLaunchError(f"internal error: {what} of {nbytes} bytes at {ptr:#x} is outside every "
                                  f"allocation of {self.name}")
        return alloc

    def copy_h2d(self, dst, src, stream):
        keep = self._check(dst, src.nbytes, "a copy to the device")
        data = np.array(src, copy=True, order="C")  # taken now: the caller may reuse its buffer at once
        stream.enqueue(lambda: ctypes.memmove(dst, data.ctypes.data, data.nbytes) and keep)

    def copy_d2h(self, dst, src, stream):
        keep = self._check(src, dst.nbytes, "a copy from the device")
        stream.enqueue(lambda: ctypes.memmove(dst.ctypes.data, src, dst.nbytes) and keep)

    def copy_d2d(self, dst, src, nbytes, stream):
        keep = (self._check(src, nbytes, "a device copy's source"),
                self._check(dst, nbytes, "a device copy's destination"))
        stream.enqueue(lambda: ctypes.memmove(dst, src, nbytes) and keep)

    def default_stream(self):
        return self._default

    def create_stream(self):
        stream = EmulatedStream(self)
        self._streams.add(stream)
        return stream

    def wrap_stream(self, handle):
        if handle == 0:
            return self._default
        stream = _STREAMS.get(handle)
        if stream is not None and stream.device is self:
            return stream
        raise TileLaunchError(f"stream handle {handle:#x} is not a stream of {self.name}; on the emulated "
                              "device pass a tw.Stream (or None for the default stream)")

    def create_event(self):
        return EmulatedEvent()

    def load(self, exe):
        from ..backends.cuda import emulator
        return emulator.load(exe.code)

    def launch(self, loaded, grid, block, bufs, stream, prints=(), keep=(), shared=0):
        from ..backends.cuda import emulator, emulator_threads
        # `shared` (dynamic shared memory) needs no request here: the library holds its kernel's arena.

        def work():  # holds `keep`: the arrays outlive the launch, however soon the caller drops them
            emulator.call(loaded, bufs, grid, emulator_threads(), prints)
            return keep
        stream.enqueue(work)

    def launch_user(self, fn, name, dims, bufs, stream, keep=()):
        """Enqueue a hand-written kernel's launch stub (program_emulated.py): `fn(params, dims)` with one
        buffer per parameter and dims = grid x y z, block x y z."""
        from ..backends.cuda import emulator
        fn.restype, fn.argtypes = ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]
        params = (ctypes.c_void_p * max(len(bufs), 1))(*[b.ctypes.data for b in bufs])
        d = (ctypes.c_uint * 6)(*dims)
        stub = types.SimpleNamespace(tw_emulate=fn, tw_kernel_name=name)  # what emulator._emulate calls

        def work():  # holds the arguments until the launch has run, as `launch` does
            emulator._emulate(stub, (params, d), (bufs, keep))
            return keep
        stream.enqueue(work)

    def synchronize(self):
        for stream in [self._default, *self._streams]:
            stream.synchronize()
