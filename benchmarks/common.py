"""What every benchmark script shares: interleaved timing and a one-line description of the machine."""
from __future__ import annotations

import os
import platform
import statistics
import time


def interleaved_medians(fns, repeat, warmup=2):
    """Median seconds of each function, after `warmup` untimed rounds, running them in turn so that
    machine noise hits all of them alike."""
    for _ in range(warmup):
        for f in fns:
            f()
    times = [[] for _ in fns]
    for _ in range(repeat):
        for f, ts in zip(fns, times):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def machine():
    """CPU model and core count, for quoting a figure with where it was measured."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"
