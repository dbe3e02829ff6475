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


class StreamTypeError(TileLaunchError, TypeError):
    """A launch's stream argument is of a kind no runtime path knows; a TypeError as well, since it is the
    argument's type that is wrong."""


def _stream_kind(stream):
    """Which kind of stream `stream` is ("none", "tilewise", "handle", "protocol", "foreign", "cuda.core"),
    or None for anything that is no stream."""
    if stream is None:
        return "none"
    if isinstance(stream, Stream):
        return "tilewise"
    if isinstance(stream, int) and not isinstance(stream, bool):
        return "handle"
    if getattr(stream, "__cuda_stream__", None) is not None:
        return "protocol"
    if type(stream).__module__.split(".")[0] in ("torch", "cupy", "cupy_backends") and \
            any(hasattr(stream, a) for a in ("cuda_stream", "ptr")):
        return "foreign"
    if type(stream).__module__.startswith("cuda.core"):
        return "cuda.core"
    return None


def check_stream(stream):
    """Raise StreamTypeError unless `stream` is something `resolve_stream` can use. A launch on host arrays
    never needs the stream, but checks it all the same, so a wrong one fails on every machine."""
    if _stream_kind(stream) is None:
        text = repr(stream)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise StreamTypeError(f"stream must be None, a tw.Stream, a cuda.core Stream, an object with "
                              f"__cuda_stream__ (a CuPy or PyTorch stream) or an int handle, got "
                              f"{type(stream).__name__} {text}")


def resolve_stream(stream, device):
    """The driver stream for `stream`: None (the device's default), a tw.Stream, a cuda.core Stream,
    an object with `__cuda_stream__` (CuPy, PyTorch, ...), or a raw cudaStream_t handle int."""
    kind = _stream_kind(stream)
    if kind is None:
        check_stream(stream)
    if kind == "none":
        return device.driver.default_stream()
    if kind == "tilewise":
        if stream.device is not device:
            raise TileLaunchError(f"the stream is on {stream.device.name} but the arrays are on {device.name}; "
                                  "launch on a stream of the arrays' device")
        return stream._stream
    if kind == "handle":
        return device.driver.wrap_stream(stream)
    if kind == "protocol":
        proto = stream.__cuda_stream__
        handle = proto() if callable(proto) else proto
        return device.driver.wrap_stream(int(handle[1]))
    if kind == "foreign":  # PyTorch and CuPy streams of versions without __cuda_stream__
        attr = "cuda_stream" if hasattr(stream, "cuda_stream") else "ptr"
        return device.driver.wrap_stream(int(getattr(stream, attr)))
    return device.driver.wrap_stream(int(stream.handle))
