"""Tensor cores for matmul/mma: fp16 or bf16 operands, fp32 accumulation, one warp-wide
`mma.sync.aligned.m16n8k16` per 16x8x16 step (tilewise.cuh's tw_mma_m16n8k16; emulator.h implements
the same fragments in plain C++). A mixin of codegen.KernelGen, used by reduce.ReduceOps.op_matmul.

Applies where the tile shapes fit whole fragments (M % 16, N % 8, K % 16, no batch) and the result is
float32/float16/bfloat16; each warp owns 16x8 output tiles and walks K. The generated code keeps the
scalar loop next to it, taken on sm_70/75 (the `__CUDA_ARCH__ >= 800` guard) and where blockDim.x is
not a multiple of 32. Operands come from the tiles in shared memory through ldmatrix: `.x4` gives A's
four 8x8 quarters, `.x2.trans` the two 8x8 halves of the row-major B as column fragments (tilewise.cuh's
tw_ldmatrix_*; emulator.h exchanges the lanes' row addresses like the hardware). Its rows must be
16-byte aligned: where that could fail, fragments are gathered with 32-bit loads and packed pairs.
Next step: wgmma on sm_90."""
from __future__ import annotations

import math

from ...ir import dtypes as D
from . import exprs as X

MMA_INPUTS = {D.float16: "tw_f16", D.bfloat16: "tw_bf16"}
MMA_OUTPUTS = {D.float32, D.float16, D.bfloat16}


def mma_fits(op):
    """Whether a matmul op takes the tensor-core path (on sm_80+)."""
    x, y, *acc = op.operands
    if x.type.dtype not in MMA_INPUTS or y.type.dtype is not x.type.dtype or op.attrs["dtype"] not in MMA_OUTPUTS:
        return False
    m, k, n = x.type.shape[-2], x.type.shape[-1], y.type.shape[-1]
    return math.prod(x.type.shape[:-2]) == 1 and m % 16 == 0 and n % 8 == 0 and k % 16 == 0


class TensorCoreOps:
    def ldmatrix_fits(self, x, y):
        """Whether every row ldmatrix reads is 16-byte aligned: both operands start on a 16-byte boundary
        of shared memory and their rows (K and N 16-bit elements) are whole multiples of 16 bytes. Holds
        whenever mma_fits does (storage.ALIGN is 16); checked so that a layout change falls back."""
        m, k, n = x.type.shape[-2], x.type.shape[-1], y.type.shape[-1]
        off = self.storage.offset
        return (all(v.id in off and off[v.id] % 16 == 0 for v in (x, y)) and (2 * k) % 16 == 0
                and (2 * n) % 16 == 0 and m % 16 == 0)

    def emit_mma(self, op):
        """The tensor-core loop (inside `#if`): each warp takes 16x8 tiles of the result in turn."""
        x, y, *acc = op.operands
        v, out_dt = op.result, op.attrs["dtype"]
        m, k, n = x.type.shape[-2], x.type.shape[-1], y.type.shape[-1]
        t = MMA_INPUTS[x.type.dtype]
        xs, ys, vs = self.name(x), self.name(y), self.name(v)
        self.line("const int lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;")
        # The loop depends on the warp only: all 32 lanes run the same trips (mma.sync needs them all).
        self.line(f"for (int tile = threadIdx.x >> 5; tile < {(m // 16) * (n // 8)}; tile += blockDim.x >> 5) {{")
        self.depth += 1
        self.line(f"const int rt = (tile / {n // 8}) * 16, ct = (tile % {n // 8}) * 8;")
        self.line("const int r0 = rt + gid, c0 = ct + tig * 2;")
        spots = [("r0", "c0"), ("r0", "c0 + 1"), ("(r0 + 8)", "c0"), ("(r0 + 8)", "c0 + 1")]
        if acc:
            init = [X.widen(f"{self.name(acc[0])}[{r} * {n} + {c}]", out_dt) for r, c in spots]
        else:
            init = ["0.0f"] * 4
        self.line(f"float d[4] = {{{', '.join(init)}}};")
        self.line(f"for (int kk = 0; kk < {k}; kk += 16) {{")
        self.depth += 1
        if self.ldmatrix_fits(x, y):
            # Lane 8q + r: row r of A's quarter q (q & 1: rows + 8, q >> 1: columns + 8); lane r (+ 8) for
            # row r of B's upper (lower) 8x8 half. Lanes 16..31 repeat 0..15 (x2 ignores them).
            self.line("tw_u32 a[4], b[2];")
            self.line(f"tw_ldmatrix_x4(a, {xs} + (rt + (lane & 7) + ((lane >> 3) & 1) * 8) * {k} + kk + "
                      "(lane >> 4) * 8);")
            self.line(f"tw_ldmatrix_x2_trans(b, {ys} + (kk + (lane & 15)) * {n} + ct);")
        else:
            a = [f"tw_pair({xs} + {r} * {k} + kk + tig * 2{off})" for off in ("", " + 8") for r in ("r0", "(r0 + 8)")]
            self.line(f"const tw_u32 a[4] = {{{', '.join(a)}}};")
            b = [f"tw_pack2({ys}[(kk + tig * 2 + {q}) * {n} + ct + gid], "
                 f"{ys}[(kk + tig * 2 + {q + 1}) * {n} + ct + gid])" for q in (0, 8)]
            self.line(f"const tw_u32 b[2] = {{{', '.join(b)}}};")
        self.line(f"tw_mma_m16n8k16<{t}>(d, a, b);")
        self.depth -= 1
        self.line("}")
        for i, (r, c) in enumerate(spots):
            self.line(f"{vs}[{r} * {n} + {c}] = {X.cast(f'd[{i}]', D.float32, out_dt)};")
        self.depth -= 1
        self.line("}")
