"""The machine's memory bandwidth and compute peak, measured once with two small tilewise kernels (a
copy larger than the caches, and a loop of in-register tile matrix multiplies) and kept in the disk
cache per machine, backend and tilewise version. Bytes and FLOPs come from the same counting rules as
the profile's, so the roofline's points and roof agree on what is counted."""
from __future__ import annotations

import json
import os
import platform
import time
import types

import numpy as np

from .. import backends
from ..frontend.builtins import PUBLIC
from ..frontend.kernel import kernel
from ..language import Constant
from ..runtime.launch import _prepare, launch
from ..support import __version__, diskcache
from .counting import count, sizes_of

NAMESPACE = "profiler-peaks"
VERSION = 2
tl = types.SimpleNamespace(**PUBLIC)  # the language functions, spelled as in a user's kernel


@kernel
def _copy(x, y, T: Constant[int]):
    i = tl.bid(0)
    tl.store(y, index=(i,), tile=tl.load(x, index=(i,), shape=(T,)))


@kernel
def _fma(a, b, c, R: Constant[int], T: Constant[int]):
    acc = tl.load(a, index=(0, 0), shape=(T, T))
    tb = tl.load(b, index=(0, 0), shape=(T, T))
    for _ in range(R):  # each product reads the last (b = -I keeps acc at zero): nothing to hoist
        acc = tl.mma(acc, tb, acc)
    tl.store(c, index=(tl.bid(0), 0), tile=acc)


def _best_rate(k, grid, args, what, repeats=5):
    """Work per second of the fastest of `repeats` launches (after a warm-up that compiles)."""
    launch(None, grid, k, args)
    (fn, _), values, _ = _prepare(k, args, backends.host_backend_name())
    counts = count(fn, sizes_of(fn, values), grid + (1,) * (3 - len(grid)))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        launch(None, grid, k, args)
        best = min(best, time.perf_counter() - t)
    return getattr(counts, what) / best


def measure() -> dict:
    n, t = 1 << 23, 1 << 14  # 32 MiB per array: past the last-level cache of most hosts
    x = np.ones(n, np.float32)
    gbps = _best_rate(_copy, (n // t,), (x, np.empty_like(x), t), "bytes") / 1e9
    blocks, size = 4 * (os.cpu_count() or 1), 64
    a = np.ones((size, size), np.float32)
    c = np.empty((blocks * size, size), np.float32)
    gflops = _best_rate(_fma, (blocks,), (a, -np.eye(size, dtype=np.float32), c, 64, size), "flops") / 1e9
    return {"gbps": gbps, "gflops": gflops}


def cpu_model():
    """The CPU's model name (/proc/cpuinfo's, else what `platform` says): the benchmarks quote it too."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model)
    except OSError:
        pass
    return model


def _machine_key():
    parts = (NAMESPACE, VERSION, __version__, backends.host_backend_name(), cpu_model(), os.cpu_count(),
             os.environ.get("TILEWISE_NUM_THREADS"))
    return tuple(str(p) for p in parts)


def peaks(refresh=False) -> dict:
    """{'gbps': ..., 'gflops': ..., 'backend': ...} for the host backend: from the disk cache, else measured."""
    key = _machine_key()
    if not refresh:
        hit = diskcache.get(NAMESPACE, key)
        if hit is not None:
            try:
                return json.loads(hit)
            except ValueError:
                pass
    got = {**measure(), "backend": backends.host_backend_name()}
    diskcache.put(NAMESPACE, key, json.dumps(got).encode())
    return got


def cached_peaks():
    """The peaks if they were measured before on this machine (never measures), else None."""
    hit = diskcache.get(NAMESPACE, _machine_key())
    try:
        return json.loads(hit) if hit is not None else None
    except ValueError:
        return None
