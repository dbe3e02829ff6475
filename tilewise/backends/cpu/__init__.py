"""The native CPU backend: Tile IR -> LLVM IR (llvmlite) -> machine code for this host, with the
grid's blocks spread over a thread pool (TILEWISE_NUM_THREADS, default every core).

Two disk-cache entries serve a kernel. The compiler's is keyed by the LLVM IR (compiler.py). This
module's is keyed by the Tile IR itself and holds the object code with what the launcher needs (frame
size, metadata layout, assert messages and their source lines), so a warm start neither imports the code
generator nor runs it, and loads the object without LLVM (loading.py). Kernels that print are left out
of it: their callback is registered with the process while the code is generated."""
from __future__ import annotations

import json
import os

from ...ir import print_function
from ...support import diskcache
from .loading import Compiled, cache_key_parts
from .launcher import Launcher

KERNEL_NAMESPACE = "cpu-kernel"


class CpuExecutable:
    """One kernel specialisation compiled for the host. `code` is the optimised LLVM IR, `binary` the
    object code. UNDETERMINED padding is compiled in, so a kernel is rebuilt when TILEWISE_POISON changes."""

    def __init__(self, fn):
        self.fn = fn
        self._variants = {}
        self._variant(_poison())
        self._resources = None

    @property
    def resources(self):
        """`vector_bytes`/`vector_registers`: the target CPU's vectors, which the code generator sizes its
        loops and micro-kernels by. Asked for on demand: a warm start from the disk cache loads no LLVM."""
        if self._resources is None:
            from .compiler import vector_shape
            nbytes, nregs = vector_shape()
            self._resources = {"vector_bytes": nbytes, "vector_registers": nregs}
        return self._resources

    def _variant(self, poison):
        v = self._variants.get(poison)
        if v is None:
            key = _kernel_key(self.fn, poison)
            v = self._variants[poison] = _cached(self.fn, poison, key) or _generate(self.fn, poison, key)
        return v

    @property
    def code(self):
        return self._variant(_poison())[0].code

    @property
    def binary(self):
        return self._variant(_poison())[0].binary

    @property
    def asm(self):
        return self._variant(_poison())[0].asm

    def run(self, args, grid):
        self._variant(_poison())[1].run(args, grid)


def _kernel_key(fn, poison):
    """The Tile-IR key, or None for kernels that print. Assert messages and their source locations are
    part of it: they are what a failing launch reports, and the printed IR does not show locations."""
    ops = list(fn.walk())
    if any(op.name == "printf" for op in ops):
        return None
    asserts = [(op.attrs["msg"], op.loc) for op in ops if op.name == "assert"]
    return (*cache_key_parts(), "kernel", print_function(fn), poison, repr(asserts))


def _cached(fn, poison, key):
    if key is None:
        return None
    meta, obj = diskcache.get(KERNEL_NAMESPACE, (*key, "meta")), diskcache.get(KERNEL_NAMESPACE, (*key, "object"))
    if meta is None or obj is None:
        return None
    try:  # the digest vouches for the bytes; these checks for what an older tilewise may have written
        m = json.loads(meta)
        asserts = [(msg, tuple(loc) if loc else None) for msg, loc in m["asserts"]]
        frame_bytes, meta_size = int(m["frame_bytes"]), int(m["meta_size"])
    except (ValueError, KeyError, TypeError) as e:
        diskcache.reject(KERNEL_NAMESPACE, (*key, "meta"), f"unreadable launch metadata ({e})")
        return None
    compiled = Compiled(obj, lambda: _llvm_text(fn, poison))
    return compiled, Launcher(fn, compiled.address, frame_bytes, meta_size, asserts)


def _llvm_text(fn, poison):
    from .codegen import KernelGen  # only when the optimised IR is asked for after a warm start
    return str(KernelGen(fn, poison=poison).module)


def _generate(fn, poison, key):
    from .codegen import KernelGen
    gen = KernelGen(fn, poison=poison)
    compiled = Compiled.from_ir(str(gen.module))
    if key is not None:
        meta = {"frame_bytes": gen.frame_bytes, "meta_size": gen.meta_size, "asserts": gen.asserts}
        diskcache.put(KERNEL_NAMESPACE, (*key, "object"), compiled.binary)
        diskcache.put(KERNEL_NAMESPACE, (*key, "meta"), json.dumps(meta).encode())
    return compiled, Launcher(fn, compiled.address, gen.frame_bytes, gen.meta_size, gen.asserts,
                              sequential=gen.printf_handle is not None)


def _poison():
    return os.environ.get("TILEWISE_POISON") == "1"


class CpuBackend:
    name = "cpu"

    def compile(self, fn, target=None):
        return CpuExecutable(fn)

    @staticmethod
    def describe():
        from .compiler import target_description
        return target_description()
