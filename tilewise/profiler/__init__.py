"""The profiler: `with tilewise.profiler.profile() as prof:` records every kernel launch (name, backend,
grid, time, compile time and cache, bytes moved, FLOPs); `prof.table()`, `prof.kernels()`,
`prof.export_chrome_trace(path)`, `prof.roofline(path)`; `tilewise.profiler.range(name)` user ranges.
See docs/profiling.md."""
from __future__ import annotations

from .counting import Counts, count, sizes_of
from .names import display_name
from .session import LaunchRecord, Profile, RangeRecord, profile, range  # noqa: A004

__all__ = ["Counts", "LaunchRecord", "Profile", "RangeRecord", "count", "display_name", "profile", "range",
           "sizes_of"]
