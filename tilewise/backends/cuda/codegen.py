"""Tile IR -> one `extern "C" __global__` CUDA C++ kernel per specialisation.

One CTA runs one block of the tile program with THREADS threads. Scalars (0-d tiles) are registers
that every thread computes alike, so control flow on them is uniform across the CTA. Other tiles live
in shared memory (layout: storage.py) and every op on tiles is a block-strided loop over its elements
followed by tw_sync(), except elementwise chains, which fuse into their consumer's loop and stay in
registers (fusion.py). Loads/stores use 128-bit accesses where rows allow (memory.py), reductions warp
shuffles (reduce.py), fp16/bf16 matmuls tensor cores with ldmatrix on sm_80+ (tensorcore.py), loads
cp.async, double-buffered in for loops (pipeline.py). Next steps: tiles in registers across ops,
warp-shuffle scans, wgmma, TMA loads.

The kernel's parameters: one `tw_array<T, ND>` (pointer, shape, strides in elements) per array, one
value per scalar, then `int* tw_status` (a failed tw.assert_ writes its number and block there)."""
from __future__ import annotations

import math
import re

from ...errors import TileUnsupportedError
from ...ir.types import ArrayType
from . import exprs as X
from .control import ControlFlow
from .fusion import inline_map
from .indexing import ravel, unravel
from .memory import MemoryOps
from .pipeline import Pipeline, pipelined_loads
from .printing import Printing
from .reduce import ReduceOps, reduce_scratch
from .storage import STATIC_SHARED_LIMIT, Storage, is_tile
from .tensorcore import TensorCoreOps

THREADS = 128
HEADER = "tilewise.cuh"


def kernel_name(fn):
    return "tw_" + re.sub(r"\W", "_", fn.name)


__all__ = ["THREADS", "KernelGen", "generate", "kernel_name", "ravel", "unravel"]


def _staged(op):
    """Atomics with a scalar result run on one thread; the old value reaches the others through smem.
    CTA-wide reductions gather their warps' partial results there (reduce.reduce_scratch bytes)."""
    return (op.name == "atomic" and not is_tile(op.results[0])) or reduce_scratch(op)


class KernelGen(MemoryOps, ReduceOps, TensorCoreOps, Pipeline, ControlFlow, Printing):
    def __init__(self, fn, poison=False, pipeline=True):
        self.fn, self.poison = fn, poison
        self.inline = inline_map(fn)
        self.exprs = {}  # value id -> (reads, build) of a fused value (fusion.py), filled where it is defined
        # double-buffered loads (pipeline.py); left out where their second buffers do not fit
        self.pipelined, pinned = pipelined_loads(fn) if pipeline else ({}, {})
        self.storage = Storage(fn, _staged, self.inline, pinned)
        self.names, self.lines, self.depth = {}, [], 1
        self.asserts = []  # (message, loc) of each assert, numbered from 1 in tw_status[0]
        self.prints = []  # (format, [(dtype, shape)], python, order) of each printf, numbered from 0
        self.loops = []  # (op, trip counter) of the loops around the op being generated
        self.uid = 0

    # ---- emission helpers --------------------------------------------------------------------------

    def line(self, s):
        self.lines.append("  " * self.depth + s)

    def fresh(self, prefix="t"):
        self.uid += 1
        return f"{prefix}{self.uid}"

    def name(self, v):
        if v.id not in self.names:
            self.names[v.id] = self.fresh("v")
        return self.names[v.id]

    def ref(self, v, i):
        """The C expression of v's element i."""
        return self._evaluate([("ref", v, i)])

    def _evaluate(self, todo):
        """Evaluate a fused expression tree with a stack of its own rather than by recursion: chains of
        fused ops may be hundreds deep (fusion.MAX_DEPTH). Operands are expanded first to last, so the
        text is what a recursive walk would produce. Items: ("ref", value, index), and ("build",
        function, n), which replaces the last n results by function(them)."""
        done = []
        while todo:
            item = todo.pop()
            if item[0] == "build":
                _, build, n = item
                args = done[len(done) - n:]
                del done[len(done) - n:]
                done.append(build(args))
                continue
            _, v, i = item
            if v.id not in self.exprs:
                done.append(f"{self.name(v)}[{i}]" if is_tile(v) else self.name(v))
                continue
            whole = i if re.fullmatch(r"[\w.]+", i) else f"({i})"  # it goes into other arithmetic
            self._push(todo, *self.exprs[v.id], whole, paren=True)
        (out,) = done
        return out

    @staticmethod
    def _push(todo, reads, build, i, paren=False):
        operands = reads(i)
        todo.append(("build", (lambda a: f"({build(i, a)})") if paren else (lambda a: build(i, a)), len(operands)))
        todo.extend(("ref", x, j) for x, j in reversed(operands))

    def element(self, reads, build, i):
        """The C expression of element i of a value defined by (reads, build) (see `define`)."""
        todo = []
        self._push(todo, reads, build, i)
        return self._evaluate(todo)

    def ct(self, v):
        return X.ctype(v.type.dtype)

    def smem(self, key, ct):
        return f"(({ct}*)(tw_smem + {self.storage.offset[key]}))"

    def declare(self, v):
        """Name a new value; tiles get their shared-memory pointer."""
        if is_tile(v):
            self.line(f"{self.ct(v)}* const {self.name(v)} = {self.smem(v.id, self.ct(v))};")

    def loop(self, n, body, var="i"):
        self.line(f"for (int {var} = threadIdx.x; {var} < {n}; {var} += blockDim.x) {{")
        self.depth += 1
        for s in body if isinstance(body, list) else [body]:
            self.line(s)
        self.depth -= 1
        self.line("}")

    def define(self, v, build, reads=lambda i: ()):
        """v elementwise: `reads(i)` lists the (operand, index expression) pairs that element i reads and
        `build(i, exprs)` makes its C expression from theirs (two functions, not one that calls `ref`,
        so that `ref` needs no recursion). A fill loop for a tile, one register for a scalar, nothing
        yet for a fused value."""
        if v.id in self.inline:
            self.exprs[v.id] = (reads, build)
        elif is_tile(v):
            self.declare(v)
            self.loop(math.prod(v.type.shape), f"{self.name(v)}[i] = {self.element(reads, build, 'i')};")
        else:
            self.line(f"const {self.ct(v)} {self.name(v)} = {self.element(reads, build, '0')};")

    def pointwise(self, op, build):
        """op's element i reads element i of each operand: build(*their expressions)."""
        self.define(op.result, lambda i, a: build(*a), lambda i: [(x, i) for x in op.operands])

    def unsupported(self, op, what):
        raise TileUnsupportedError(f"the CUDA backend does not support {what} yet (op '{op.name}')", op.loc)

    # ---- driver ------------------------------------------------------------------------------------

    def generate(self):
        params = []
        for p in self.fn.params:
            if isinstance(p.type, ArrayType):
                self.names[p.id] = self.fresh("a")
                params.append(f"tw_array<{X.ctype(p.type.dtype)}, {p.type.ndim}> {self.names[p.id]}")
            else:
                params.append(f"{self.ct(p)} {self.name(p)}")
        params.append("int* tw_status")
        self.block(self.fn.body)
        body, name = self.lines, kernel_name(self.fn)
        out = [f"// Generated by tilewise from kernel '{self.fn.name}'. Threads per CTA: {THREADS}; "
               f"shared memory: {self.storage.total} bytes.",
               f'#include "{HEADER}"', "",
               f'extern "C" __global__ void __launch_bounds__({THREADS}) {name}(',
               "    " + ",\n    ".join(params) + ") {"]
        if self.storage.total > STATIC_SHARED_LIMIT:  # opted into at launch (the driver sets the attribute)
            out.append(f"  TW_DYNAMIC_SHARED(tw_smem, {self.storage.total});")
        elif self.storage.total:
            out.append(f"  __shared__ __align__(16) unsigned char tw_smem[{self.storage.total}];")
        out += body + ["}", ""]
        out += self.emulator_entry(name)
        return "\n".join(out)

    def emulator_entry(self, name):
        """A host entry for emulator.h: `params` holds one pointer per kernel parameter (the layout
        cuLaunchKernel takes), the last one pointing at the status pointer."""
        args = []
        for k, p in enumerate(self.fn.params):
            t = f"tw_array<{X.ctype(p.type.dtype)}, {p.type.ndim}>" if isinstance(p.type, ArrayType) else self.ct(p)
            args.append(f"*({t}*)params[{k}]")
        n = len(self.fn.params)
        args.append(f"*(int**)params[{n}]")
        return ["#ifdef TW_EMULATOR",
                'extern "C" TW_EXPORT int tw_emulate(void** params, unsigned gx, unsigned gy, unsigned gz, '
                'unsigned nthreads, tw_emu::print_fn print) {',
                f"  return tw_emu::launch(gx, gy, gz, nthreads, *(int**)params[{n}], print,",
                f"                        [&] {{ {name}({', '.join(args)}); }});",
                "}", "#endif", ""]

    def block(self, block):
        for op in block.ops:
            if op.name in ("yield", "return"):
                return
            method = getattr(self, "op_" + op.name, None)
            if method is None:
                self.unsupported(op, f"'{op.name}'")
            method(op)
            if op.results and all(r.id in self.inline for r in op.results):
                continue  # fused into its use: nothing written
            # A barrier after every op that touches shared memory (its storage may be reused next) and
            # after every write to global memory (a scalar scatter runs on one thread; all read after).
            smem = any(is_tile(v) for v in list(op.operands) + list(op.results)) or op in self.storage.staged_ops
            # (A double-buffered load writes nothing here: the loop's top waited and synchronised.)
            quiet = op.name in ("for", "while", "if") or id(op) in self.pipelined
            if (smem or op.name == "scatter") and not quiet:
                self.line("tw_sync();")

    # ---- simple ops --------------------------------------------------------------------------------

    def op_constant(self, op):
        lit = X.literal(op.attrs["value"], op.attrs["dtype"])
        self.define(op.result, lambda i, a: lit)

    def op_arange(self, op):
        self.define(op.result, lambda i, a: X.astype(f"(tw_i64){i}", "tw_i64", op.attrs["dtype"]))

    def op_bid(self, op):
        self.define(op.result, lambda i, a: f"(tw_i32)blockIdx.{'xyz'[op.attrs['axis']]}")

    def op_num_blocks(self, op):
        self.define(op.result, lambda i, a: f"(tw_i32)gridDim.{'xyz'[op.attrs['axis']]}")

    def op_array_dim(self, op):
        self.define(op.result, lambda i, a: f"(tw_i32){self.name(op.operands[0])}.shape[{op.attrs['axis']}]")

    def op_unary(self, op):
        dt = op.operands[0].type.dtype
        self.pointwise(op, lambda x: X.unary(op.attrs["fn"], x, dt))

    def op_binary(self, op):
        dt = op.operands[0].type.dtype
        self.pointwise(op, lambda x, y: X.binary(op.attrs["fn"], x, y, dt))

    def op_where(self, op):
        self.pointwise(op, lambda c, x, y: f"({c} ? {x} : {y})")

    def op_cast(self, op):
        dt = op.operands[0].type.dtype
        self.pointwise(op, lambda x: X.cast(x, dt, op.attrs["dtype"]))

    def op_bitcast(self, op):
        dt = op.operands[0].type.dtype
        self.pointwise(op, lambda x: X.bitcast(x, dt, op.attrs["dtype"]))

    # ---- shape ops: result element i reads one operand element -------------------------------------

    def _gather_from(self, op, x, src_coords):
        out = op.result.type.shape
        self.define(op.result, lambda i, a: a[0], lambda i: [(x, ravel(src_coords(unravel(i, out)), x.type.shape))])

    def op_reshape(self, op):
        self.pointwise(op, lambda x: x)

    def op_broadcast(self, op):
        (x,) = op.operands
        self._gather_from(op, x, lambda c: [ck if s != 1 else "0" for ck, s in zip(c, x.type.shape)])

    def op_permute(self, op):
        (x,) = op.operands
        perm = op.attrs["perm"]

        def src(c):
            s = [None] * len(perm)
            for k, p in enumerate(perm):
                s[p] = c[k]
            return s
        self._gather_from(op, x, src)

    def op_extract(self, op):
        x, *dynamic = op.operands
        dynamic = iter(dynamic)
        # a run-time index is clamped to the last whole sub-tile (ir/ops.py)
        base = [i * s if i is not None else _clamped(self.name(next(dynamic)), n // s - 1, s)
                for i, s, n in zip(op.attrs["index"], op.attrs["shape"], x.type.shape)]
        self._gather_from(op, x, lambda c: [ck if b == 0 else f"({ck} + {b})" for ck, b in zip(c, base)])

    def op_cat(self, op):
        x, y = op.operands
        ax, n = op.attrs["axis"], x.type.shape[op.attrs["axis"]]
        out = op.result.type.shape

        def reads(i):
            c = unravel(i, out)
            cy = c[:ax] + [f"({c[ax]} - {n})"] + c[ax + 1:]
            return [(x, ravel(c, x.type.shape)), (y, ravel(cy, y.type.shape))]
        self.define(op.result, lambda i, a: f"({unravel(i, out)[ax]} < {n} ? {a[0]} : {a[1]})", reads)

    # ---- debugging ---------------------------------------------------------------------------------

    def op_assert(self, op):
        self.asserts.append((op.attrs["msg"], op.loc))
        self.line(f"if (!({self.name(op.operands[0])})) {{ tw_fail(tw_status, {len(self.asserts)}); return; }}")


def _clamped(v, last, s):
    """The element offset of run-time sub-tile index v, clamped to 0..last (ir/ops.py's extract)."""
    return f"((long long)({v}) < 0 ? 0LL : (long long)({v}) > {last}LL ? {last * s}LL : (long long)({v}) * {s})"


def generate(fn, poison=False, pipeline=True):
    """(CUDA C++ source, KernelGen) for one specialisation."""
    gen = KernelGen(fn, poison, pipeline)
    return gen.generate(), gen
