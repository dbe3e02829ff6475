"""Backends register here behind one interface: `compile(fn: ir.Function, target) -> Executable`.

An Executable has `run(args, grid)` (one host value per IR parameter), or is `on_device` (GPU code that
tilewise.runtime loads and launches), and the inspectable `code`, `binary` and `resources` (None / {}
where a backend has none). Backends sit beside the frontend and below the runtime: they import only
tilewise.ir, tilewise.errors and tilewise.support (docs/architecture.md, tests/test_layers.py)."""
from __future__ import annotations

import os
import shutil

from ..errors import TileLaunchError

_FACTORIES = {}
_INSTANCES = {}


def register(name, factory):
    _FACTORIES[name] = factory


def get(name):
    if name not in _INSTANCES:
        if name not in _FACTORIES:
            raise TileLaunchError(f"unknown backend '{name}'; available: {', '.join(sorted(_FACTORIES))}")
        _INSTANCES[name] = _FACTORIES[name]()
    return _INSTANCES[name]


def available():
    return sorted(_FACTORIES)


def host_backend_name():
    """The backend for host arrays: TILEWISE_BACKEND, else the default (`cpu`, or `reference` where the
    native backend is switched off)."""
    return os.environ.get("TILEWISE_BACKEND") or DEFAULT_HOST_BACKEND


def _reference():
    from .reference import ReferenceBackend
    return ReferenceBackend()


register("reference", _reference)


def _cpu():
    from .cpu import CpuBackend
    return CpuBackend()


# The native backend covers every op, the shared suite runs on it, and it is the default for host
# arrays; TILEWISE_BACKEND=reference keeps the oracle, and TILEWISE_ENABLE_CPU=0 leaves it out.
if os.environ.get("TILEWISE_ENABLE_CPU") != "0":
    register("cpu", _cpu)
DEFAULT_HOST_BACKEND = "cpu" if "cpu" in _FACTORIES else "reference"


def _cuda():
    from .cuda import CudaBackend
    return CudaBackend()


def _cuda_emulated():
    from .cuda import EmulatedBackend
    return EmulatedBackend()


def host_cxx():
    """The C++20 host compiler that cuda-emulated builds with ($CXX, else g++), or None if missing."""
    return shutil.which(os.environ.get("CXX") or "g++")


# "cuda" compiles for a GPU target (tw.compile(..., target="cuda:sm_90")). Its emulator runs the same
# generated code on the host and is registered wherever a host C++ compiler is found, so the shared
# test fixture runs every kernel test under emulation too; TILEWISE_ENABLE_CUDA_EMULATED=0 turns it off.
register("cuda", _cuda)
if os.environ.get("TILEWISE_ENABLE_CUDA_EMULATED") != "0" and host_cxx():
    register("cuda-emulated", _cuda_emulated)
