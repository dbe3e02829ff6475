"""The native CPU backend: Tile IR -> LLVM IR (llvmlite) -> machine code for this host (MCJIT), with the
grid's blocks spread over a thread pool (TILEWISE_NUM_THREADS, default every core)."""
from __future__ import annotations

import os

from .codegen import ENTRY, KernelGen
from .compiler import Compiled, target_description
from .launcher import Launcher


class CpuExecutable:
    """One kernel specialisation compiled for the host. `code` is the optimised LLVM IR, `binary` the
    object code. UNDETERMINED padding is compiled in, so a kernel is rebuilt when TILEWISE_POISON changes."""

    def __init__(self, fn):
        self.fn = fn
        self.resources = {}
        self._variants = {}
        self._variant(_poison())

    def _variant(self, poison):
        v = self._variants.get(poison)
        if v is None:
            gen = KernelGen(self.fn, poison=poison)
            compiled = Compiled(str(gen.module), ENTRY)
            launcher = Launcher(self.fn, compiled.address, gen.frame_bytes, gen.meta_size, gen.asserts,
                                sequential=gen.printf_handle is not None)
            v = self._variants[poison] = (compiled, launcher)
        return v

    @property
    def code(self):
        return self._variant(_poison())[0].code

    @property
    def binary(self):
        return self._variant(_poison())[0].binary

    def run(self, args, grid):
        self._variant(_poison())[1].run(args, grid)


def _poison():
    return os.environ.get("TILEWISE_POISON") == "1"


class CpuBackend:
    name = "cpu"

    def compile(self, fn, target=None):
        return CpuExecutable(fn)

    @staticmethod
    def describe():
        return target_description()
