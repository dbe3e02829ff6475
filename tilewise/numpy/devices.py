"""Which device new arrays go to: `with tilewise.numpy.device("cuda:0"):` (this thread), else
`set_device(...)`, else TILEWISE_DEVICE (cpu, cuda, cuda:N), else the first GPU where a real one is
present, else the CPU. Arrays made from existing ones stay on their device; `x.to_device(d)` and
`asarray(x, device=d)` move them."""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from . import storage

_LOCAL = threading.local()
_STATE = {}


def _detected():
    """cuda:0 where this machine has a real GPU with a working driver, else the CPU (asked once)."""
    if "detected" not in _STATE:
        try:
            from ..runtime import driver
            _STATE["detected"] = storage.parse_device("cuda:0") if driver.device_count("cuda") > 0 and \
                not driver.emulation_requested() else storage.CPU
        except Exception:  # no cuda-bindings, no driver, no device: the CPU
            _STATE["detected"] = storage.CPU
    return _STATE["detected"]


def default_device():
    stack = getattr(_LOCAL, "stack", None)
    if stack:
        return stack[-1]
    if "set" in _STATE:
        return _STATE["set"]
    env = os.environ.get("TILEWISE_DEVICE", "").strip()
    if env:
        return storage.parse_device(env)
    return _detected()


def set_device(spec):
    """Make `spec` ("cpu", "cuda", "cuda:N", a Device) the default device of new arrays (None: back to
    TILEWISE_DEVICE or what the machine has)."""
    if spec is None:
        _STATE.pop("set", None)
    else:
        _STATE["set"] = storage.parse_device(spec)


@contextmanager
def device(spec):
    """New arrays made in the block (by this thread) go to `spec`."""
    stack = _LOCAL.__dict__.setdefault("stack", [])
    stack.append(storage.parse_device(spec))
    try:
        yield stack[-1]
    finally:
        stack.pop()


def target(device_arg, like=None):
    """The device a new array goes to: the `device=` argument, else `like`'s (an array of ours or a
    device array), else the default."""
    if device_arg is not None:
        return storage.parse_device(device_arg)
    if like is not None:
        node = getattr(like, "_node", None)
        if node is not None:
            return node.device or storage.CPU
        if storage.on_device(like):
            return like.device
    return default_device()
