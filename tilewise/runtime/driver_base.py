"""The small driver interface the runtime talks to (driver.py says which implementation serves a device):
pointers, sizes and stream handles cross it as plain ints, host buffers as C-contiguous NumPy arrays."""
from __future__ import annotations


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
