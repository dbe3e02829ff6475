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
NumPy arrays. Every enqueued operation is ordered on the stream it is given. The interface itself is
in driver_base.py, which both implementations import."""
from __future__ import annotations

import os

from ..errors import TileLaunchError

EMULATED_DEVICES = 2


_DRIVERS = {}


def emulation_requested() -> bool:
    return os.environ.get("TILEWISE_EMULATE_GPU", "") not in ("", "0")


def device_count(kind: str) -> int:
    if kind == "emulated":
        return EMULATED_DEVICES
    from . import driver_cuda
    return driver_cuda.device_count()


def get(kind: str, ordinal: int):
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
