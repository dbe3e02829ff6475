"""The CUDA backend: Tile IR -> CUDA C++ (codegen.py) -> cubin with NVRTC (nvrtc.py).

Two registered names: "cuda" compiles for a GPU architecture (tw.compile(..., target="cuda:sm_90"));
its executables are `on_device`: tilewise.runtime launches them on a device, and host arrays given to the
"cuda" backend are copied to the default device, run there and copied back (runtime/device_launch.py).
"cuda-emulated" builds the same generated source with the host
C++ compiler against include/emulator.h and runs it on the CPU, so the generator is tested without a
GPU (registered wherever a host C++ compiler is found; TILEWISE_ENABLE_CUDA_EMULATED=0 turns it off)."""
from __future__ import annotations

import os

from ...errors import TileLaunchError, TileUnsupportedError
from . import emulator, nvrtc
from .codegen import THREADS, generate
from .occupancy import occupancy
from .storage import STATIC_SHARED_LIMIT, is_tile, nbytes, shared_limit


def _resources(gen, **more):
    """`dynamic_shared_bytes`: what a launch must request (and opt into) beyond the static 48 KB.
    `occupancy`/`max_ctas_per_sm`/`occupancy_limit` are for `arch`; the emulator's executables stand for
    TILEWISE_EMULATED_ARCH and have no register count, so theirs leave registers out (an upper bound)."""
    total = gen.storage.total
    arch = more.get("arch") or os.environ.get("TILEWISE_EMULATED_ARCH", "sm_80")
    return {"threads_per_cta": THREADS, "shared_bytes": total,
            "dynamic_shared_bytes": total if total > STATIC_SHARED_LIMIT else 0, **more,
            **occupancy(arch, THREADS, total, more.get("registers"))}


def _fitting(fn, arch, poison=False):
    """(code, gen) whose tiles fit the shared memory of `arch`: double-buffered loads give up their
    second buffers where those would not fit; a kernel that does not fit even so is refused."""
    code, gen = generate(fn, poison)
    limit = shared_limit(arch)
    if gen.storage.total > limit and gen.pipelined:
        code, gen = generate(fn, poison, pipeline=False)
    _check_shared_memory(fn, gen.storage.total, limit, arch)
    return code, gen


class CudaExecutable:
    def __init__(self, fn, arch):
        self.fn, self.arch = fn, arch
        self.code, gen = _fitting(fn, arch)
        self.binary, info = nvrtc.compile_cubin(self.code, arch, name=f"{fn.name}.cu")
        self.resources = _resources(gen, arch=arch, **info)
        self.asserts, self.prints = gen.asserts, gen.prints

    @property
    def asm(self):
        """The PTX of the kernel (NVRTC again, on request)."""
        return nvrtc.compile_ptx(self.code, self.arch, name=f"{self.fn.name}.cu")

    # Code for a GPU: the runtime loads and launches it on a device (host arrays are copied there and back,
    # runtime/device_launch.py); a backend never reaches up into the runtime.
    on_device = True


def _check_shared_memory(fn, total, limit, arch):
    """Refuse, before NVRTC or the driver would, a kernel whose live tiles need more shared memory than a
    CTA may use on `arch`; point at the op that makes the largest tile."""
    if total <= limit:
        return
    ops = [op for op in fn.walk() if op.results and is_tile(op.results[0])]
    big = max(ops, key=lambda op: nbytes(op.results[0].type), default=None)
    what = f"; the largest is {big.results[0].type} ({nbytes(big.results[0].type)} bytes)" if big else ""
    raise TileUnsupportedError(
        f"kernel '{fn.name}' needs {total} bytes of shared memory for the tiles it keeps live on the GPU, "
        f"more than the {limit} bytes ({limit >> 10} KB) a CTA may use on {arch}{what}; use smaller tile "
        "shapes (tilewise keeps tiles in shared memory on the cuda backend)", big.loc if big else None)


class CudaBackend:
    name = "cuda"

    def compile(self, fn, target=None):
        return CudaExecutable(fn, nvrtc.parse_arch(target))


def _poison():
    return os.environ.get("TILEWISE_POISON") == "1"


def emulator_threads():
    """Threads per CTA in the emulator: the GPU's count by default; fewer make tests faster and make
    every block-strided loop take several trips."""
    return int(os.environ.get("TILEWISE_EMULATOR_THREADS", THREADS))


class EmulatedExecutable:
    binary = None

    def __init__(self, fn):
        self.fn = fn
        self._variants = {}
        self.code, gen = self._variant(False)
        self.resources = _resources(gen)
        self.asserts, self.prints = gen.asserts, gen.prints  # what a device launch (runtime) reports

    def _variant(self, poison):
        if poison not in self._variants:  # held to the shared memory of the GPU it stands for
            self._variants[poison] = _fitting(self.fn, os.environ.get("TILEWISE_EMULATED_ARCH", "sm_80"), poison)
        return self._variants[poison]

    def run(self, args, grid):
        code, gen = self._variant(_poison())
        emulator.run(emulator.load(code), self.fn, args, grid, gen.asserts, emulator_threads(), gen.prints)


class EmulatedBackend:
    name = "cuda-emulated"

    def compile(self, fn, target=None):
        return EmulatedExecutable(fn)
