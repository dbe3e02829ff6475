"""Code generation for reductions, scans and matmul: one output element (or scan line) per thread, a
plain loop over the reduced elements, accumulating in float64 / wrapping 64-bit integers as the
reference does. A mixin of codegen.KernelGen.

Next steps: warp-shuffle tree reductions and scans, mma.sync (sm_80) and wgmma (sm_90) for matmul
with operands in registers."""
from __future__ import annotations

import math

from ...ir import dtypes as D
from . import exprs as X
from .indexing import ravel, unravel
from .storage import is_tile


class ReduceOps:
    def _per_output(self, v, n, body):
        """body(o, target) for each output element: a thread per element of a tile result, every
        thread the whole computation for a scalar result."""
        if is_tile(v):
            self.declare(v)
            self.line(f"for (int o = threadIdx.x; o < {n}; o += blockDim.x) {{")
            target = f"{self.name(v)}[o]"
        else:
            self.line(f"{self.ct(v)} {self.name(v)};")
            self.line("{")
            self.line("  const int o = 0;")
            target = self.name(v)
        self.depth += 1
        body("o", target)
        self.depth -= 1
        self.line("}")

    def op_reduce(self, op):
        (x,) = op.operands
        fn, dt, out_dt = op.attrs["fn"], x.type.dtype, op.result.type.dtype
        shape, axes = x.type.shape, sorted(op.attrs["axes"])
        kept = [k for k in range(len(shape)) if k not in axes]
        inner = [math.prod(shape[k + 1:]) for k in range(len(shape))]
        n_out, n_red = math.prod(shape[k] for k in kept), math.prod(shape[k] for k in axes)

        def offset(var, dims):
            cs = unravel(var, [shape[k] for k in dims])
            return " + ".join(f"{c} * {inner[k]}" for c, k in zip(cs, dims) if c != "0") or "0"

        def body(o, target):
            self.line(f"const int base = {offset(o, kept)};")
            elem = f"{self.name(x)}[base + {offset('r', axes)}]"
            if fn in ("argmax", "argmin"):
                self._arg_reduce(fn, dt, elem, n_red, target)
                return
            if fn in ("sum", "prod"):
                acc_t = "double" if dt.is_float else "tw_u64"
                load = X.widen(elem, dt, "double") if dt.is_float else f"(tw_u64){elem}"
                self.line(f"{acc_t} acc = {'0' if fn == 'sum' else '1'};")
                self.line(f"for (int r = 0; r < {n_red}; ++r) acc {'+' if fn == 'sum' else '*'}= {load};")
            else:
                acc_t = "double" if dt.is_float else X.ctype(dt)
                load = X.widen(elem, dt, "double") if dt.is_float else elem
                comb = X.binary("maximum" if fn == "max" else "minimum", "acc", "e", dt if not dt.is_float
                                else D.float64)
                self.line("int r = 0;")
                self.line(f"{acc_t} acc = {load};")
                self.line(f"for (r = 1; r < {n_red}; ++r) {{ const {acc_t} e = {load}; acc = {comb}; }}")
            self.line(f"{target} = {X.astype('acc', acc_t, out_dt)};")
        self._per_output(op.result, n_out, body)

    def _arg_reduce(self, fn, dt, elem, n, target):
        t = "float" if dt in X.NARROW else X.ctype(dt)
        load = X.widen(elem, dt)
        better = ">" if fn == "argmax" else "<"
        nan = dt.is_float
        self.line("int r = 0;")
        self.line(f"{t} best = {load};")
        self.line("int bi = 0;")
        cond = f"(best == best) && (e != e || e {better} best)" if nan else f"e {better} best"
        self.line(f"for (r = 1; r < {n}; ++r) {{ const {t} e = {load}; if ({cond}) {{ best = e; bi = r; }} }}")
        self.line(f"{target} = (tw_i32)bi;")

    def op_scan(self, op):
        (x,) = op.operands
        v, fn, dt = op.result, op.attrs["fn"], x.type.dtype
        shape, ax = x.type.shape, op.attrs["axis"]
        inner = math.prod(shape[ax + 1:])
        others = [k for k in range(len(shape)) if k != ax]
        lines = math.prod(shape[k] for k in others)
        acc_t = "double" if dt.is_float else "tw_u64"
        load = X.widen(f"{self.name(x)}[p]", dt, "double") if dt.is_float else f"(tw_u64){self.name(x)}[p]"
        self.declare(v)
        self.line(f"for (int l = threadIdx.x; l < {lines}; l += blockDim.x) {{")
        self.depth += 1
        cs = unravel("l", [shape[k] for k in others])
        base = " + ".join(f"{c} * {math.prod(shape[k + 1:])}" for c, k in zip(cs, others) if c != "0") or "0"
        self.line(f"const int base = {base};")
        self.line(f"{acc_t} acc = {'0' if fn == 'cumsum' else '1'};")
        self.line(f"for (int k = 0; k < {shape[ax]}; ++k) {{")
        self.line(f"  const int p = base + k * {inner};")
        self.line(f"  acc {'+' if fn == 'cumsum' else '*'}= {load};")
        self.line(f"  {self.name(v)}[p] = {X.astype('acc', acc_t, v.type.dtype)};")
        self.line("}")
        self.depth -= 1
        self.line("}")

    def op_matmul(self, op):
        x, y, *acc = op.operands
        v, in_dt, out_dt = op.result, x.type.dtype, op.attrs["dtype"]
        m, k, n = x.type.shape[-2], x.type.shape[-1], y.type.shape[-1]
        batch = math.prod(x.type.shape[:-2])
        fl = in_dt.is_float
        acc_t = "double" if fl else "tw_u64"

        def load(e, dt):
            return X.widen(e, dt, "double") if dt.is_float else f"(tw_u64){e}"

        def body(o, target):
            b, i, j = unravel(o, (batch, m, n))
            self.line(f"const int xo = {ravel([b, i, '0'], (batch, m, k))}, yo = {ravel([b, '0', j], (batch, k, n))};")
            self.line(f"{acc_t} acc = 0;")
            self.line(f"for (int q = 0; q < {k}; ++q) acc += {load(f'{self.name(x)}[xo + q]', in_dt)} * "
                      f"{load(f'{self.name(y)}[yo + q * {n}]', in_dt)};")
            if acc:
                a = f"{self.name(acc[0])}[o]"
                self.line(f"acc += {X.widen(a, out_dt, 'double') if fl else f'(tw_u64)(tw_i64){a}'};")
            src = "acc" if fl else "(tw_i64)acc"
            self.line(f"{target} = {X.cast(src, D.float64 if fl else D.int64, out_dt)};")
        self._per_output(v, math.prod(v.type.shape), body)
