"""The small driver interface the runtime talks to, and which implementation serves a device name.

Two implementations, one per device kind:
- "cuda" (driver_cuda.py): real GPUs through cuda.core and cuda.bindings.
- "emulated" (driver_emulated.py): host memory stands in for device memory, each stream is a worker
  thread that runs its work in order, and kernels run through the cuda-emulated backend (the same
  generated CUDA C++ built with the host compiler). It lets every runtime path be tested without a GPU.

Which one `tw.Device("cuda:0")` gets: the emulated driver when TILEWISE_EMULATE_GPU=1, else the real
one. "cuda-emulated:N" always names an emulated device. The emulator offers EMULATED_DEVICES devices
(so multi-device errors are testable) of architecture TILEWISE_EMULATED_ARCH (default sm_80).

Pointers, sizes and stream handles cross this interface as plain ints; host buffers as C-contiguous
NumPy arrays. Every enqueued operation is ordered on the stream it is given."""
from __future__ import annotations

import os

from ..errors import TileLaunchError

EMULATED_DEVICES = 2


class DriverStream:
    """A queue of device work. `handle` is the int a foreign library would use (cudaStream_t)."""
    handle: int

    def synchronize(self):
        raise NotImplementedError

    def wait(self, event):
        """Later work on this stream waits until `event` (a DriverEvent) has happened."""
        raise NotImplementedError


class DriverEvent:
    def record(self, stream):
        raise NotImplementedError

    def synchronize(self):
        raise NotImplementedError

    def query(self) -> bool:
        raise NotImplementedError

    def elapsed_ms(self, start) -> float:
        """Milliseconds from `start` (an earlier recorded event) to this one."""
        raise NotImplementedError


class DeviceDriver:
    """One device. `kind` is "cuda" or "emulated"; `backend` names the backend that compiles for it."""
    kind: str
    backend: str
    ordinal: int
    name: str
    arch: str

    def info(self) -> dict:
        """Driver and library versions, device properties: what a report should say about the machine."""
        raise NotImplementedError

    def alloc(self, nbytes: int, stream: DriverStream):
        """An allocation object with `.ptr` (int) that frees the memory when it is garbage collected."""
        raise NotImplementedError

    def copy_h2d(self, dst: int, src, stream: DriverStream):
        raise NotImplementedError

    def copy_d2h(self, dst, src: int, stream: DriverStream):
        raise NotImplementedError

    def copy_d2d(self, dst: int, src: int, nbytes: int, stream: DriverStream):
        raise NotImplementedError

    def default_stream(self) -> DriverStream:
        raise NotImplementedError

    def create_stream(self) -> DriverStream:
        raise NotImplementedError

    def wrap_stream(self, handle: int) -> DriverStream:
        """A stream that some other library created, by its handle (not owned: never destroyed here)."""
        raise NotImplementedError

    def create_event(self) -> DriverEvent:
        raise NotImplementedError

    def load(self, exe):
        """The launchable form of a backend executable on this device (a cubin's kernel, a host library)."""
        raise NotImplementedError

    def launch(self, loaded, grid, block: int, bufs, stream: DriverStream, prints=(), keep=(), shared=0):
        """Enqueue one launch. `bufs`: one NumPy buffer per kernel parameter, in order (the storage
        cuLaunchKernel copies the parameters from); `keep`: objects that must live until it has run;
        `shared`: bytes of dynamic shared memory per block (`load` opted into them)."""
        raise NotImplementedError

    def owns(self, ptr: int) -> bool:
        """Whether `ptr` is memory of this device (for arrays from other libraries, which name no device)."""
        raise NotImplementedError

    def synchronize(self):
        raise NotImplementedError


_DRIVERS = {}


def emulation_requested() -> bool:
    return os.environ.get("TILEWISE_EMULATE_GPU", "") not in ("", "0")


def device_count(kind: str) -> int:
    if kind == "emulated":
        return EMULATED_DEVICES
    from . import driver_cuda
    return driver_cuda.device_count()


def get(kind: str, ordinal: int) -> DeviceDriver:
    key = (kind, ordinal)
    if key not in _DRIVERS:
        count = device_count(kind)
        if not 0 <= ordinal < count:
            where = "the emulator offers" if kind == "emulated" else "this machine has"
            raise TileLaunchError(f"no CUDA device {ordinal}: {where} {count}")
        if kind == "emulated":
            from .driver_emulated import EmulatedDriver
            _DRIVERS[key] = EmulatedDriver(ordinal)
        else:
            from .driver_cuda import CudaDriver
            _DRIVERS[key] = CudaDriver(ordinal)
    return _DRIVERS[key]


def all_drivers():
    """The drivers created so far (to find which device owns a foreign pointer)."""
    return list(_DRIVERS.values())
