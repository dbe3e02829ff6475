"""Code generation for the memory ops: tiled load/store (padding, dropped out-of-bounds stores, strided
arrays), gather/scatter and atomics. A mixin of codegen.KernelGen.

Next steps: vectorised and coalesced global access, cp.async/TMA for loads, native atomics for the
types the hardware has (tw_atomic_rmw is a compare-and-swap loop for all of them)."""
from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as D
from ..reference import semantics as M
from . import exprs as X
from .indexing import unravel
from .storage import is_tile


class MemoryOps:
    def _tile_access(self, arr, idx, shape, order, i):
        """(in-bounds condition, element offset) of tile element i of a load/store."""
        a, conds, offs = self.name(arr), [], []
        for k, (c, s) in enumerate(zip(unravel(i, shape), shape)):
            d = order[k]
            g = self.fresh("g")
            self.line(f"const tw_i64 {g} = (tw_i64){self.name(idx[k])} * {s} + {c};")
            conds.append(f"{g} >= 0 && {g} < {a}.shape[{d}]")
            offs.append(f"{g} * {a}.stride[{d}]")
        return " && ".join(conds), " + ".join(offs)

    def _padding(self, mode, dt):
        if mode != "undetermined":
            return X.literal(M.padding_value(mode, dt), dt)
        if not self.poison:
            return X.literal(0, dt)  # what GPUs deliver; TILEWISE_POISON=1 makes reliance on it visible
        return X.literal(np.nan if dt.is_float else True if dt.is_bool else np.iinfo(dt.np).max, dt)

    def op_load(self, op):
        arr, *idx = op.operands
        v, shape = op.result, op.attrs["shape"]
        pad = self._padding(op.attrs["padding"], v.type.dtype)
        self.declare(v)
        self.line(f"for (int i = threadIdx.x; i < {math.prod(shape)}; i += blockDim.x) {{")
        self.depth += 1
        ok, off = self._tile_access(arr, idx, shape, op.attrs["order"], "i")
        self.line(f"{self.name(v)}[i] = ({ok}) ? {self.name(arr)}.ptr[{off}] : {pad};")
        self.depth -= 1
        self.line("}")

    def op_store(self, op):
        arr, *idx, tile = op.operands
        shape = tile.type.shape
        self.line(f"for (int i = threadIdx.x; i < {math.prod(shape)}; i += blockDim.x) {{")
        self.depth += 1
        ok, off = self._tile_access(arr, idx, shape, op.attrs["order"], "i")
        self.line(f"if ({ok}) {self.name(arr)}.ptr[{off}] = {self.name(tile)}[i];")
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
            offs.append(f"{g} * {a}.stride[{k}]")
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
