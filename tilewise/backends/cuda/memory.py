"""Code generation for the memory ops: tiled load/store (padding, dropped out-of-bounds stores, strided
arrays), gather/scatter and atomics. A mixin of codegen.KernelGen.

Tile loads/stores whose innermost tile dimension is the array's and a multiple of 16 bytes go in
128-bit pieces (one per thread, consecutive threads on consecutive pieces: coalesced); a piece whose
address is not 16-byte aligned, whose array has an innermost stride other than 1, or which reaches past
the array's end falls back to element accesses with the bounds checks (checked at run time, per piece).
Loads copy with cp.async (tilewise.cuh's tw_cp_async: 16-byte pieces, or whole 4/8-byte elements on the
element path), committed and waited for before the op's barrier; with zero padding a piece that reaches
past the row's end is copied too and cp.async's src-size zero-fills the rest. Loads in `for` loops may
be double-buffered instead (pipeline.py). Next steps: TMA on sm_90, native atomics for the types the
hardware has (tw_atomic_rmw is a compare-and-swap loop for all of them)."""
from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as D
from ..reference import semantics as M
from . import exprs as X
from .indexing import unravel
from .storage import is_tile


class MemoryOps:
    def stride(self, arr, d):
        """Array dimension d's stride in elements: the literal 1 for the innermost dimension where
        specialisation knows it (the compiler then folds the index arithmetic and the unit-stride test)."""
        if arr.type.unit_stride and d == arr.type.ndim - 1:
            return "1"
        return f"{self.name(arr)}.stride[{d}]"

    def _tile_access(self, arr, idx, shape, order, i):
        """(in-bounds condition, element offset) of tile element i of a load/store."""
        a, conds, offs = self.name(arr), [], []
        for k, (c, s) in enumerate(zip(unravel(i, shape), shape)):
            d = order[k]
            g = self.fresh("g")
            self.line(f"const tw_i64 {g} = (tw_i64){self.name(idx[k])} * {s} + {c};")
            conds.append(f"{g} >= 0 && {g} < {a}.shape[{d}]")
            offs.append(f"{g} * {self.stride(arr, d)}")
        return " && ".join(conds), " + ".join(offs)

    def _padding(self, mode, dt):
        if mode != "undetermined":
            return X.literal(M.padding_value(mode, dt), dt)
        if not self.poison:
            return X.literal(0, dt)  # what GPUs deliver; TILEWISE_POISON=1 makes reliance on it visible
        return X.literal(np.nan if dt.is_float else True if dt.is_bool else np.iinfo(dt.np).max, dt)

    def _vector_width(self, arr, shape, order):
        """Elements per 128-bit access of a load/store, or 0 where the tile's rows cannot use them: the
        tile's innermost dimension must be the array's and a multiple of the width."""
        size = arr.type.dtype.itemsize
        vec = 16 // size if size in (1, 2, 4, 8) else 0
        if not shape or list(order) != list(range(len(shape))) or vec < 2 or shape[-1] % vec:
            return 0
        return vec

    def _vector_loop(self, arr, idx, shape, vec, fast, slow, partial=False):
        """A block-strided loop over the tile's `vec`-element pieces (thread t takes piece t: coalesced).
        fast(i, ptr, n) emits the 128-bit access at element i of which n elements are in the array (n is
        `vec` unless `partial`: then pieces that start inside the array and reach past its end take the
        fast path too); slow(i, j, ok, off) one element's fallback, taken where the array's innermost
        stride is not 1, the address is not 16-byte aligned (checked at run time) or the piece reaches
        past the array's end."""
        a, nd = self.name(arr), len(shape)
        unit = self.fresh("unit")
        self.line(f"const bool {unit} = {self.stride(arr, nd - 1)} == 1;")
        self.line(f"for (int i = threadIdx.x * {vec}; i < {math.prod(shape)}; i += blockDim.x * {vec}) {{")
        self.depth += 1
        conds, offs, gs = [], [], []
        for k, (c, s) in enumerate(zip(unravel("i", shape), shape)):
            g = self.fresh("g")
            gs.append(g)
            self.line(f"const tw_i64 {g} = (tw_i64){self.name(idx[k])} * {s} + {c};")
            if k < nd - 1:
                conds.append(f"{g} >= 0 && {g} < {a}.shape[{k}]")
                offs.append(f"{g} * {self.stride(arr, k)}")
        outer_ok, outer_off, last = " && ".join(conds) or "true", " + ".join(offs) or "0", gs[-1]
        p, inside = self.fresh("p"), f"{a}.shape[{nd - 1}] - {last}"
        fits = f"{last} < {a}.shape[{nd - 1}]" if partial else f"{last} + {vec} <= {a}.shape[{nd - 1}]"
        self.line(f"if ({unit} && {outer_ok} && {last} >= 0 && {fits} && "
                  f"tw_aligned16({a}.ptr + {outer_off} + {last})) {{")
        self.line(f"  const auto {p} = {a}.ptr + {outer_off} + {last};")
        self.depth += 1
        fast("i", p, f"({inside} < {vec} ? (int)({inside}) : {vec})" if partial else str(vec))
        self.depth -= 1
        self.line("} else {")
        self.line(f"  for (int j = 0; j < {vec}; ++j) {{")
        self.depth += 2
        self.line(f"const tw_i64 gj = {last} + j;")
        slow("i", "j", f"{outer_ok} && gj >= 0 && gj < {a}.shape[{nd - 1}]",
             f"{outer_off} + gj * {self.stride(arr, nd - 1)}")
        self.depth -= 2
        self.line("  }")
        self.line("}")
        self.depth -= 1
        self.line("}")

    def op_load(self, op):
        v = op.result
        if id(op) in self.pipelined:  # double-buffered (pipeline.py): the copies are in flight already
            k = dict((id(loop), k) for loop, k in self.loops)[id(self.pipelined[id(op)][0])]
            self.line(f"{self.ct(v)}* const {self.name(v)} = {self.buffer(v, f'{k} & 1')};")
            return
        self.declare(v)
        if self.load_copies(op, self.name(v)):
            # The thread's copies land before the barrier that follows every op (codegen.block).
            self.line("tw_cp_async_commit();")
            self.line("tw_cp_async_wait<0>();")

    def load_copies(self, op, t):
        """The loop that copies a load's tile into shared memory at `t`; True where it uses cp.async
        (the caller commits and waits)."""
        arr, *idx = op.operands
        v, shape = op.result, op.attrs["shape"]
        pad = self._padding(op.attrs["padding"], v.type.dtype)
        vec = self._vector_width(arr, shape, op.attrs["order"])
        a, size = self.name(arr), v.type.dtype.itemsize
        # Zero padding comes with cp.async's zero fill: pieces that reach past the row's end copy in one go.
        zero = op.attrs["padding"] == "zero" or (op.attrs["padding"] == "undetermined" and not self.poison)
        if vec:
            self._vector_loop(arr, idx, shape, vec,
                              lambda i, p, n: self.line(f"tw_cp_async<16>(&{t}[{i}], {p}, {n} * {size});"),
                              lambda i, j, ok, off: self.line(f"{t}[{i} + {j}] = ({ok}) ? {a}.ptr[{off}] : {pad};"),
                              partial=zero)
        else:
            self.line(f"for (int i = threadIdx.x; i < {math.prod(shape)}; i += blockDim.x) {{")
            self.depth += 1
            ok, off = self._tile_access(arr, idx, shape, op.attrs["order"], "i")
            if size in (4, 8):  # a whole element per copy (4/8-byte cp.async.ca)
                self.line(f"if ({ok}) tw_cp_async<{size}>(&{t}[i], &{a}.ptr[{off}], {size}); else {t}[i] = {pad};")
            else:
                self.line(f"{t}[i] = ({ok}) ? {a}.ptr[{off}] : {pad};")
            self.depth -= 1
            self.line("}")
            return size in (4, 8)
        return True

    def op_store(self, op):
        arr, *idx, tile = op.operands
        shape = tile.type.shape
        vec = self._vector_width(arr, shape, op.attrs["order"])
        if vec:
            ct, a, w = self.ct(tile), self.name(arr), self.fresh("w")

            def fast(i, p):
                # The 16 bytes as four words of scalars (a register array or union would go to local memory).
                for j in range(vec):
                    self.line(f"const {ct} {w}_{j} = {self.ref(tile, f'({i} + {j})')};")
                size = 16 // vec
                if size == 8:
                    words = [f"(tw_u32)(tw_bitcast<tw_u64>({w}_{j // 2}) >> {32 * (j % 2)})" for j in range(4)]
                else:
                    bits = {4: "tw_u32", 2: "tw_u16", 1: "tw_u8"}[size]
                    per = 4 // size
                    words = [" | ".join(f"((tw_u32)tw_bitcast<{bits}>({w}_{q * per + e}) << {8 * size * e})"
                                        for e in range(per)) for q in range(4)]
                self.line(f"tw_store16({p}, tw_v16{{{', '.join(words)}}});")
            self._vector_loop(arr, idx, shape, vec, lambda i, p, n: fast(i, p),
                              lambda i, j, ok, off: self.line(f"if ({ok}) {a}.ptr[{off}] = "
                                                              f"{self.ref(tile, f'({i} + {j})')};"))
            return
        self.line(f"for (int i = threadIdx.x; i < {math.prod(shape)}; i += blockDim.x) {{")
        self.depth += 1
        ok, off = self._tile_access(arr, idx, shape, op.attrs["order"], "i")
        self.line(f"if ({ok}) {self.name(arr)}.ptr[{off}] = {self.ref(tile, 'i')};")
        self.depth -= 1
        self.line("}")

    def _indexed(self, op, n_values, i):
        """(condition, offset, value operands) of element i of a gather/scatter/atomic."""
        arr, rest = op.operands[0], op.operands[1:]
        nd = arr.type.ndim
        idx, vals, mask = rest[:nd], rest[nd:nd + n_values], rest[nd + n_values:]
        a, conds, offs = self.name(arr), [], []
        for k, ix in enumerate(idx):
            g = self.fresh("g")
            self.line(f"const tw_i64 {g} = (tw_i64){self.ref(ix, i)};")
            conds.append(f"{g} >= 0 && {g} < {a}.shape[{k}]")
            offs.append(f"{g} * {self.stride(arr, k)}")
        if mask:
            conds.append(self.ref(mask[0], i))
        return " && ".join(conds), " + ".join(offs), vals

    def _per_element(self, op, body):
        """Run body(i) once per element of the index shape, each element on one thread."""
        n = math.prod(op.operands[1].type.shape)
        self.line(f"for (int i = threadIdx.x; i < {n}; i += blockDim.x) {{")
        self.depth += 1
        body("i")
        self.depth -= 1
        self.line("}")

    def op_gather(self, op):
        v, dt = op.result, op.result.type.dtype
        pv = op.attrs["padding_value"]
        pad = X.literal(M.cast(np.array(pv), D.float64 if isinstance(pv, float) else D.int64, dt), dt)
        arr = self.name(op.operands[0])
        if is_tile(v):
            self.declare(v)
            target = f"{self.name(v)}[i]"
            self._per_element(op, lambda i: self._gather_one(op, arr, target, pad, i))
        else:
            self.line(f"{self.ct(v)} {self.name(v)};")
            self.line("{")
            self.depth += 1
            self._gather_one(op, arr, self.name(v), pad, "0")
            self.depth -= 1
            self.line("}")

    def _gather_one(self, op, arr, target, pad, i):
        ok, off, _ = self._indexed(op, 0, i)
        self.line(f"{target} = ({ok}) ? {arr}.ptr[{off}] : {pad};")

    def op_scatter(self, op):
        arr = self.name(op.operands[0])

        def body(i):
            ok, off, (val,) = self._indexed(op, 1, i)
            self.line(f"if ({ok}) {arr}.ptr[{off}] = {self.ref(val, i)};")
        self._per_element(op, body)

    def op_atomic(self, op):
        v, kind, dt = op.result, op.attrs["kind"], op.result.type.dtype
        ct, arr = X.ctype(dt), self.name(op.operands[0])
        staged = not is_tile(v)
        target = self.smem(("staged", v.id), ct) if staged else self.name(v)
        if not staged:
            self.declare(v)

        def body(i):
            ok, off, vals = self._indexed(op, 2 if kind == "cas" else 1, i)
            val = [self.ref(x, i) for x in vals]
            if kind == "xchg":
                new = val[0]
            elif kind == "cas":
                new = f"({X.binary('eq', 'o', val[0], dt)} ? {val[1]} : o)"
            else:
                new = X.binary({"max": "maximum", "min": "minimum"}.get(kind, kind), "o", val[0], dt)
            self.line(f"{target}[i] = ({ok}) ? tw_atomic_rmw(&{arr}.ptr[{off}], [&]({ct} o) -> {ct} "
                      f"{{ return {new}; }}) : {X.literal(0, dt)};")
        self._per_element(op, body)
        if staged:
            self.line("tw_sync();")
            self.line(f"const {ct} {self.name(v)} = {target}[0];")
