"""`tw.Device`, `tw.Stream`, `tw.Event`, `tw.devices()`, and turning whatever a caller passes as a
stream into the device driver's stream.

Device names: "cuda" or "cuda:N" (a GPU; the emulated device when TILEWISE_EMULATE_GPU=1), an int N
(the same), "cuda-emulated:N" (always the emulated device). One Device object per device."""
from __future__ import annotations

from ..errors import TileLaunchError
from . import driver

_DEVICES = {}


def _parse(spec):
    kind = "emulated" if driver.emulation_requested() else "cuda"
    if spec is None:
        return kind, 0
    if isinstance(spec, int) and not isinstance(spec, bool):
        return kind, spec
    if isinstance(spec, str):
        name, _, num = spec.partition(":")
        if name in ("cuda", "cuda-emulated") and (num == "" or num.isdigit()):
            return ("emulated" if name == "cuda-emulated" else kind), int(num or 0)
        raise TileLaunchError(f"unknown device '{spec}'; write 'cuda', 'cuda:N' or 'cuda-emulated:N'")
    if type(spec).__module__.startswith("cuda.core"):  # a cuda.core Device
        return "cuda", int(spec.device_id)
    raise TileLaunchError(f"a device is named by a string ('cuda:0'), an int or a tw.Device, "
                          f"got {type(spec).__name__}")


class Device:
    """A CUDA device (real, or emulated on the host). `tw.Device()` is device 0."""

    def __new__(cls, spec=None):
        if isinstance(spec, Device):
            return spec
        key = _parse(spec)
        dev = _DEVICES.get(key)
        if dev is None:
            dev = object.__new__(cls)
            dev.driver = driver.get(*key)
            dev.kind, dev.ordinal = key
            dev._default_stream = None
            dev._status = None
            _DEVICES[key] = dev
        return dev

    @property
    def name(self):
        return f"{'cuda-emulated' if self.kind == 'emulated' else 'cuda'}:{self.ordinal}"

    @property
    def arch(self):
        """The compute capability as NVRTC names it ("sm_90")."""
        return self.driver.arch

    @property
    def target(self):
        """What `tw.compile` takes to compile for this device ("cuda:sm_90")."""
        return f"cuda:{self.arch}"

    @property
    def emulated(self):
        return self.kind == "emulated"

    def info(self):
        """Device name, architecture, driver and library versions."""
        return self.driver.info()

    @property
    def default_stream(self):
        if self._default_stream is None:
            self._default_stream = Stream._wrap(self, self.driver.default_stream())
        return self._default_stream

    def create_stream(self):
        return Stream._wrap(self, self.driver.create_stream())

    def create_event(self):
        return Event(self)

    def synchronize(self):
        """Wait for all work queued on this device."""
        self.driver.synchronize()

    def __repr__(self):
        return f"<tw.Device {self.name}: {self.driver.name}>"


def devices():
    """Every CUDA device (the emulated ones under TILEWISE_EMULATE_GPU=1); [] where there is no driver."""
    kind = "emulated" if driver.emulation_requested() else "cuda"
    try:
        n = driver.device_count(kind)
    except TileLaunchError:
        return []
    return [Device(f"{'cuda-emulated' if kind == 'emulated' else 'cuda'}:{i}") for i in range(n)]


class Stream:
    """A queue of work on one device, run in order. Made by `device.create_stream()`; `tw.Stream()`
    makes one on the default device. `__cuda_stream__` lets other libraries use it."""

    def __init__(self, device=None):
        dev = Device(device)
        self.device, self._stream = dev, dev.driver.create_stream()

    @classmethod
    def _wrap(cls, device, drv_stream):
        s = object.__new__(cls)
        s.device, s._stream = device, drv_stream
        return s

    @property
    def handle(self):
        return self._stream.handle

    def __cuda_stream__(self):
        return (0, self._stream.handle)

    def synchronize(self):
        """Wait until all work queued on this stream is done (raises the error of a failed launch)."""
        self._stream.synchronize()

    def record(self, event=None):
        """Record `event` (a new one if None) at this point of the stream; returns it."""
        event = event if event is not None else Event(self.device)
        event.record(self)
        return event

    def wait(self, event):
        """Work queued on this stream from now on waits for `event` (possibly recorded on another stream)."""
        if not isinstance(event, Event):
            raise TileLaunchError(f"Stream.wait takes a tw.Event, got {type(event).__name__}")
        self._stream.wait(event._event)

    def __repr__(self):
        return f"<tw.Stream {self.handle:#x} on {self.device.name}>"


class Event:
    """A point in a stream: `record` it, `synchronize` on it, `start.elapsed_time(end)` in milliseconds."""

    def __init__(self, device=None):
        self.device = Device(device)
        self._event = self.device.driver.create_event()

    def record(self, stream=None):
        s = resolve_stream(stream, self.device)
        self._event.record(s)
        return self

    def synchronize(self):
        self._event.synchronize()

    def query(self):
        """True once the work before the record has finished."""
        return self._event.query()

    def elapsed_time(self, end):
        """Milliseconds from this event to `end` (waits for `end`)."""
        end.synchronize()
        return end._event.elapsed_ms(self._event)


def resolve_stream(stream, device):
    """The driver stream for `stream`: None (the device's default), a tw.Stream, a cuda.core Stream,
    an object with `__cuda_stream__` (CuPy, PyTorch, ...), or a raw cudaStream_t handle int."""
    if stream is None:
        return device.driver.default_stream()
    if isinstance(stream, Stream):
        if stream.device is not device:
            raise TileLaunchError(f"the stream is on {stream.device.name} but the arrays are on {device.name}; "
                                  "launch on a stream of the arrays' device")
        return stream._stream
    if isinstance(stream, int) and not isinstance(stream, bool):
        return device.driver.wrap_stream(stream)
    proto = getattr(stream, "__cuda_stream__", None)
    if proto is not None:
        handle = proto() if callable(proto) else proto
        return device.driver.wrap_stream(int(handle[1]))
    for attr in ("cuda_stream", "ptr"):  # PyTorch and CuPy streams of versions without __cuda_stream__
        if type(stream).__module__.split(".")[0] in ("torch", "cupy", "cupy_backends") and hasattr(stream, attr):
            return device.driver.wrap_stream(int(getattr(stream, attr)))
    if type(stream).__module__.startswith("cuda.core"):
        return device.driver.wrap_stream(int(stream.handle))
    raise TileLaunchError(f"stream must be None, a tw.Stream, a cuda.core Stream, an object with "
                          f"__cuda_stream__ or an int handle, got {type(stream).__name__}")
