"""`profile()` scopes and `range()`: the one listener the runtime calls for every launch while a profile
is open, the records it makes, and the scopes they go to (every scope open at the time, from any thread)."""
from __future__ import annotations

import threading
import time

from ..runtime.launch import _listeners as _runtime_listeners
from . import diskwatch
from .counting import count_cached, sizes_of
from .names import display_name

_active: list = []          # open Profile objects, oldest first
_lock = threading.Lock()


class LaunchRecord:
    """One launch. Times are perf_counter seconds; `duration` is measured on the device (from the
    stream's events) for device launches, on the host otherwise."""
    __slots__ = ("name", "kernel", "backend", "device", "grid", "thread", "start", "end", "compile_start",
                 "compile_s", "cache", "fn", "sizes", "_events", "_duration", "_counts")

    def __init__(self, ev, cache):
        self.kernel = ev.kernel.__name__
        self.name = display_name(self.kernel)
        self.backend, self.device, self.grid, self.thread = ev.backend, ev.device, ev.grid, ev.thread
        self.start, self.end = ev.start, ev.end
        self.compile_start, self.compile_s, self.cache = ev.compile_start, ev.compile_s, cache
        self.fn, self.sizes = ev.fn, sizes_of(ev.fn, ev.values)
        self._events, self._duration, self._counts = ev.device_events, None, None

    @property
    def duration(self) -> float:
        if self._duration is None:
            if self._events is not None:  # waits for this launch only when it is asked for
                start, end = self._events
                end.synchronize()
                self._duration = end.elapsed_ms(start) / 1e3
            else:
                self._duration = self.end - self.start
        return self._duration

    def _count(self):
        if self._counts is None:
            self._counts = count_cached(self.fn, self.sizes, self.grid)
        return self._counts

    bytes = property(lambda self: self._count().bytes)
    flops = property(lambda self: self._count().flops)
    exact = property(lambda self: self._count().exact)


class RangeRecord:
    __slots__ = ("name", "start", "end", "thread")

    def __init__(self, name, start, end, thread):
        self.name, self.start, self.end, self.thread = name, start, end, thread

    @property
    def duration(self):
        return self.end - self.start


def _listener(ev, done):
    if not done:  # a compile begins: note what the disk cache has served this thread so far
        ev.extra = diskwatch.snapshot()
        return
    if ev.fn is None:  # the launch failed before it ran
        return
    cache = "memory" if not ev.compiled else diskwatch.verdict(ev.extra)
    rec = LaunchRecord(ev, cache)
    scopes = tuple(_active)
    if ev.device_events is not None and any(p.sync for p in scopes):
        ev.device_events[1].synchronize()
    for p in scopes:
        p._add_launch(rec)


def _open(p):
    diskwatch.install()
    with _lock:
        _active.append(p)
        if _listener not in _runtime_listeners:
            _runtime_listeners.append(_listener)


def _close(p):
    with _lock:
        if p in _active:
            _active.remove(p)
        if not _active and _listener in _runtime_listeners:
            _runtime_listeners.remove(_listener)


class Profile:
    """What `profile()` returns; see docs/profiling.md."""

    def __init__(self, sync=False):
        self.sync = sync
        self.launches: list[LaunchRecord] = []
        self.ranges: list[RangeRecord] = []
        self.start = self.end = None
        self._lock = threading.Lock()

    def __enter__(self):
        self.start = time.perf_counter()
        _open(self)
        return self

    def __exit__(self, *exc):
        _close(self)
        self.end = time.perf_counter()
        return False

    def _add_launch(self, rec):
        with self._lock:
            self.launches.append(rec)

    def _add_range(self, rec):
        with self._lock:
            self.ranges.append(rec)

    @property
    def wall_s(self):
        return (self.end or time.perf_counter()) - (self.start or 0.0)

    def kernels(self, peaks=None):
        from .report import kernel_stats
        return kernel_stats(self.launches, peaks)

    def table(self, peaks=None) -> str:
        from .report import table
        return table(self, peaks)

    def __str__(self):
        return self.table()

    def export_chrome_trace(self, path):
        from .trace import export_chrome_trace
        return export_chrome_trace(self, path)

    def roofline(self, path, peaks=None):
        from .roofline import plot
        return plot(self, path, peaks)


def profile(sync=False) -> Profile:
    """`with tilewise.profiler.profile() as prof:` records every launch in the scope, from any thread.
    `sync=True` waits for each device launch as it is issued (host timing matches device timing)."""
    return Profile(sync)


try:  # NVTX ranges for Nsight Systems, where the package is installed
    import nvtx as _nvtx
except Exception:  # noqa: BLE001 - any failure to import just means no NVTX
    _nvtx = None


class range:  # noqa: N801 - a context manager named like the function it reads as
    """`with tilewise.profiler.range("step"):` a named span in every open profile's trace and table
    (and an NVTX range when `nvtx` is importable)."""

    def __init__(self, name):
        self.name = str(name)

    def __enter__(self):
        self._scopes = tuple(_active)
        if _nvtx is not None:
            self._nvtx = _nvtx.start_range(message=self.name)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        end = time.perf_counter()
        if _nvtx is not None:
            _nvtx.end_range(self._nvtx)
        rec = RangeRecord(self.name, self._start, end, threading.get_ident())
        for p in self._scopes:
            if p in _active:
                p._add_range(rec)
        return False
