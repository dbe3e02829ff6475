"""Chrome / Perfetto trace JSON (the "Trace Event Format"): one complete ("ph": "X") event per launch,
compile and user range, `ts`/`dur` in microseconds from the profile's start, one row per thread."""
from __future__ import annotations

import json
import os


def _us(t, t0):
    return round((t - t0) * 1e6, 3)


def events(prof):
    t0 = prof.start or 0.0
    pid = os.getpid()
    out = [{"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": "tilewise"}}]
    for r in prof.launches:
        if r.compile_start is not None:
            out.append({"name": f"compile {r.name}", "cat": "compile", "ph": "X", "pid": pid, "tid": r.thread,
                        "ts": _us(r.compile_start, t0), "dur": round(r.compile_s * 1e6, 3),
                        "args": {"backend": r.backend, "cache": r.cache}})
        args = {"grid": list(r.grid), "bytes": r.bytes, "flops": r.flops, "backend": r.backend,
                "cache": r.cache, "kernel": r.kernel}
        if r.device:
            args["device"] = r.device
        out.append({"name": r.name, "cat": "launch", "ph": "X", "pid": pid, "tid": r.thread,
                    "ts": _us(r.start, t0), "dur": round(r.duration * 1e6, 3), "args": args})
    for r in prof.ranges:
        out.append({"name": r.name, "cat": "range", "ph": "X", "pid": pid, "tid": r.thread,
                    "ts": _us(r.start, t0), "dur": round(r.duration * 1e6, 3), "args": {}})
    return out


def export_chrome_trace(prof, path):
    """Write the trace to `path` (open it in chrome://tracing or ui.perfetto.dev); returns the path."""
    with open(path, "w") as f:
        json.dump({"traceEvents": events(prof), "displayTimeUnit": "ms"}, f)
    return path
