"""Code generation for reductions, scans and matmul. A mixin of codegen.KernelGen.

Reductions combine in registers: each lane accumulates a strided share of the reduced elements (as the
reference does: float64 for sums/products of floats, float32 for max/min, wrapping 64-bit integers),
lanes combine through __shfl_xor_sync butterflies (tw_shfl_xor), and only the partial results of whole
warps go through shared memory (reduce_lanes picks the plan). argmax/argmin carry (value, index) pairs
with NumPy's tie and NaN rules (tw_arg_combine). Scans and non-tensor-core matmuls are plain loops, one
output (or scan line) per thread; fp16/bf16 matmuls use tensor cores on sm_80+ (tensorcore.py).

Next steps: warp-shuffle scans, wgmma (sm_90) for matmul."""
from __future__ import annotations

import math

from ...ir import dtypes as D
from . import exprs as X
from .indexing import ravel, unravel
from .storage import is_tile
from .tensorcore import mma_fits

MAX_WARPS = 32  # partial results per output in the CTA-wide plan: one per warp, blockDim.x <= 1024


def reduce_lanes(op):
    """How a reduction spreads over threads: the lanes (a power of two <= 32) that share one output, or
    0 for the CTA-wide plan (every thread on every output; for few, long outputs and for 0-d results,
    which every thread needs in a register)."""
    (x,) = op.operands
    n_red = math.prod(x.type.shape[k] for k in op.attrs["axes"])
    n_out = math.prod(x.type.shape) // max(1, n_red)
    if not is_tile(op.result) or (n_out < 4 and n_red > 32):
        return 0
    return min(32, 1 << (n_red - 1).bit_length())


def reduce_scratch(op):
    """Bytes of shared memory the CTA-wide plan needs for the warps' partial results (0: none)."""
    if op.name != "reduce" or reduce_lanes(op):
        return 0
    dt, fn = op.operands[0].type.dtype, op.attrs["fn"]
    n_out = math.prod(op.result.type.shape)
    if fn in ("argmax", "argmin"):
        return n_out * MAX_WARPS * ((4 if dt in X.NARROW else dt.itemsize) + 4)
    wide = dt.is_float or fn in ("sum", "prod")
    return n_out * MAX_WARPS * (8 if wide else dt.itemsize)


def reduce_kind(fn, dt):
    """(accumulator C type, identity, combine(a, b)) of a reduction, accumulating as the reference does:
    float64 for floats, wrapping 64-bit integers for sum/prod."""
    if fn in ("argmax", "argmin"):
        return ("float" if dt in X.NARROW else X.ctype(dt)), "0", None
    if fn in ("sum", "prod"):
        op = "+" if fn == "sum" else "*"
        return ("double" if dt.is_float else "tw_u64"), ("0" if fn == "sum" else "1"), \
            (lambda a, b: f"({a} {op} {b})")
    big = fn == "max"
    name = "maximum" if big else "minimum"
    if dt.is_float:  # exact in float32 for every float narrower than float64
        wide = D.float64 if dt is D.float64 else D.float32
        ident = X.literal(-math.inf if big else math.inf, wide)
        return X.ctype(wide), ident, (lambda a, b: X.binary(name, a, b, wide))
    ct = X.ctype(dt)
    if dt.is_bool:
        ident = "false" if big else "true"
    else:
        ident = f"tw_traits<{ct}>::{'lo' if big else 'hi'}()"
    return ct, ident, (lambda a, b: X.binary(name, a, b, dt))


class ReduceOps:
    def _per_output(self, v, n, body, declare=True):
        """body(o, target) for each output element: a thread per element of a tile result, every
        thread the whole computation for a scalar result."""
        if is_tile(v):
            if declare:
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
        """Warp-shuffle reductions (see reduce_plan): lanes accumulate strided elements in registers,
        combine them with __shfl_xor_sync, and only whole warps' partials meet in shared memory."""
        (x,) = op.operands
        fn, dt, out_dt = op.attrs["fn"], x.type.dtype, op.result.type.dtype
        shape, axes = x.type.shape, sorted(op.attrs["axes"])
        kept = [k for k in range(len(shape)) if k not in axes]
        inner = [math.prod(shape[k + 1:]) for k in range(len(shape))]
        n_out, n_red = math.prod(shape[k] for k in kept), math.prod(shape[k] for k in axes)
        arg = fn in ("argmax", "argmin")
        acc_t, ident, comb = reduce_kind(fn, dt)
        argc = f"tw_arg_combine<{'true' if fn == 'argmax' else 'false'}>"

        def offset(var, dims):
            cs = unravel(var, [shape[k] for k in dims])
            return " + ".join(f"{c} * {inner[k]}" for c, k in zip(cs, dims) if c != "0") or "0"

        def load(r):
            e = self.ref(x, f"(base + {offset(r, axes)})")
            if arg:
                return X.widen(e, dt)
            if dt.is_float:
                return X.widen(e, dt, "double" if acc_t == "double" else None)
            return f"({acc_t}){e}"

        def accumulate(first, step):
            """acc (and ai) of this lane: its elements r = first, first + step, ... in order."""
            self.line(f"{acc_t} acc = {ident};")
            if arg:
                self.line("int ai = -1;")
                self.line(f"for (int r = {first}; r < {n_red}; r += {step}) {argc}(acc, ai, {load('r')}, r);")
            else:
                self.line(f"for (int r = {first}; r < {n_red}; r += {step}) acc = {comb('acc', load('r'))};")

        def shuffle(lanes):
            for m in (16, 8, 4, 2, 1):
                if m >= lanes:
                    continue
                if arg:
                    self.line(f"if ({m} < G) {{ const {acc_t} ov = tw_shfl_xor(acc, {m}); "
                              f"const int oi = tw_shfl_xor(ai, {m}); {argc}(acc, ai, ov, oi); }}")
                else:
                    # the shuffle on its own line: every lane must run it (bool's || would skip it)
                    self.line(f"if ({m} < G) {{ const {acc_t} ov = tw_shfl_xor(acc, {m}); "
                              f"acc = {comb('acc', 'ov')}; }}")

        def result(target):
            self.line(f"{target} = {'(tw_i32)ai' if arg else X.astype('acc', acc_t, out_dt)};")

        v, lanes = op.result, reduce_lanes(op)
        self.declare(v)
        if not is_tile(v):
            self.line(f"{self.ct(v)} {self.name(v)}_r;")
        self.line("{")
        self.depth += 1
        if lanes:  # `lanes` lanes per output; blockDim.x / G outputs at a time
            self.line(f"const int G = tw_lane_group({lanes}), lane = threadIdx.x & (G - 1);")
            # Every lane runs the same trips (the shuffles need the whole warp); lanes past the end idle.
            self.line(f"for (int ob = 0; ob < {n_out}; ob += blockDim.x / G) {{")
            self.depth += 1
            self.line("const int o = ob + threadIdx.x / G;")
            self.line(f"const int base = o < {n_out} ? {offset('o', kept)} : 0;")
            accumulate(f"(o < {n_out} ? lane : {n_red})", "G")
            shuffle(lanes)
            self.line(f"if (o < {n_out} && lane == 0) {{")
            self.depth += 1
            result(f"{self.name(v)}[o]")
            self.depth -= 1
            self.line("}")
            self.depth -= 1
            self.line("}")
        else:  # the whole CTA on each output: warps shuffle, their partials meet in shared memory
            self.line("const int G = tw_lane_group(32), lane = threadIdx.x & (G - 1), grp = threadIdx.x / G;")
            self.line(f"{acc_t}* const part = {self.smem(('staged', v.id), acc_t)};")
            if arg:
                self.line(f"int* const parti = (int*)(part + {n_out * MAX_WARPS});")
            for o in range(n_out):
                self.line("{")
                self.depth += 1
                self.line(f"const int base = {offset(str(o), kept) if o else '0'};")
                accumulate("(int)threadIdx.x", "(int)blockDim.x")
                shuffle(32)
                self.line(f"if (lane == 0) {{ part[{o * MAX_WARPS} + grp] = acc;"
                          + (f" parti[{o * MAX_WARPS} + grp] = ai;" if arg else "") + " }")
                self.depth -= 1
                self.line("}")
            self.line("tw_sync();")
            self.line("const int groups = blockDim.x / G;")
            if is_tile(v):
                self.line(f"for (int o = threadIdx.x; o < {n_out}; o += blockDim.x) {{")
                target = f"{self.name(v)}[o]"
            else:
                self.line("{")
                self.line("  const int o = 0;")
                target = f"{self.name(v)}_r"
            self.depth += 1
            p = f"o * {MAX_WARPS}"
            self.line(f"{acc_t} acc = part[{p}];")
            if arg:
                self.line(f"int ai = parti[{p}];")
                self.line(f"for (int g = 1; g < groups; ++g) {argc}(acc, ai, part[{p} + g], parti[{p} + g]);")
            else:
                self.line(f"for (int g = 1; g < groups; ++g) acc = {comb('acc', f'part[{p} + g]')};")
            result(target)
            self.depth -= 1
            self.line("}")
        self.depth -= 1
        self.line("}")
        if not is_tile(v):
            self.line(f"const {self.ct(v)} {self.name(v)} = {self.name(v)}_r;")

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
        if not mma_fits(op):
            self._per_output(v, math.prod(v.type.shape), body)
            return
        self.declare(v)
        self.line("#if defined(TW_EMULATOR) || __CUDA_ARCH__ >= 800")
        self.line("if (blockDim.x % 32 == 0) {")
        self.depth += 1
        self.emit_mma(op)
        self.depth -= 1
        self.line("} else")
        self.line("#endif")
        self.line("{")
        self.depth += 1
        self._per_output(v, math.prod(v.type.shape), body, declare=False)
        self.depth -= 1
        self.line("}")
