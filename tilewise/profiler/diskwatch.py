"""Whether a compile was served by the disk cache: while a profile has ever been open, the disk cache's
get/put functions are wrapped to count, per thread, the entries found and written. The backends call
them through the module (`diskcache.get(...)`), so the wrappers see every access."""
from __future__ import annotations

import functools
import threading

from ..support import diskcache

_local = threading.local()
_installed = False
_lock = threading.Lock()


def _counting(fn, field, hit_when):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        if hit_when(out):
            setattr(_local, field, getattr(_local, field, 0) + 1)
        return out
    wrapper.__tilewise_wrapped__ = fn
    return wrapper


def install():
    global _installed
    with _lock:
        if _installed:
            return
        found = lambda out: out is not None  # noqa: E731
        diskcache.get = _counting(diskcache.get, "hits", found)
        diskcache.get_file = _counting(diskcache.get_file, "hits", found)
        diskcache.put = _counting(diskcache.put, "puts", lambda out: True)
        diskcache.put_file = _counting(diskcache.put_file, "puts", lambda out: True)
        _installed = True


def snapshot():
    return getattr(_local, "hits", 0), getattr(_local, "puts", 0)


def verdict(before) -> str:
    """'disk' when the compile since `before` found entries and wrote none, else 'miss' (it compiled;
    a backend without a disk cache, like reference, always compiles)."""
    hits, puts = snapshot()
    if before is not None and puts == before[1] and hits > before[0]:
        return "disk"
    return "miss"
