"""Shape ops, reductions, scans and matmul as loop nests over tile buffers.

Accumulation follows the reference: float sums, products and scans accumulate in float64 (sums and
products may be reassociated so they vectorise; the result differs from NumPy's pairwise sum only
far below the output dtype's precision); integer ones wrap in their own width. matmul accumulates in
float32 for float16/bfloat16/float32 inputs (float64 where an operand or the result is float64) and in
int64 for integers, then converts once to the result dtype."""
from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as D
from ...ir.types import TileType
from . import elementwise as E
from .buffers import Buf
from .elements import F64, I32, I64, cast, compute_type, const, from_compute, reg_type, to_compute

FAST_SUM = ("reassoc", "contract")


def _reshape(g, op):
    src = g.buf(op.operands[0])  # tiles are immutable, so the result can share the row-major buffer
    g.values[op.result.id] = Buf(src.ptr, src.dt, op.result.type.shape)


def _broadcast(g, op):
    x, out = g.buf(op.operands[0]), g.result(op.result)
    with g.nest(out.shape) as e:
        src = [I64(0) if n == 1 else i for i, n in zip(e, x.shape)]
        g.st(out, g.flat(e, out.shape), g.ld(x, g.flat(src, x.shape)))


def _permute(g, op):
    x, out = g.buf(op.operands[0]), g.result(op.result)
    perm = op.attrs["perm"]
    with g.nest(out.shape) as e:
        src = [None] * len(perm)
        for k, p in enumerate(perm):
            src[p] = e[k]
        g.st(out, g.flat(e, out.shape), g.ld(x, g.flat(src, x.shape)))


def _cat(g, op):
    x, y = (g.buf(v) for v in op.operands)
    out, ax = g.result(op.result), op.attrs["axis"]
    for part, shift in ((x, 0), (y, x.shape[ax])):
        with g.nest(part.shape) as e:
            dst = [g.b.add(i, I64(shift)) if k == ax and shift else i for k, i in enumerate(e)]
            g.st(out, g.flat(dst, out.shape), g.ld(part, g.flat(e, part.shape)))


def _extract(g, op):
    x, out = g.buf(op.operands[0]), g.result(op.result)
    first = [i * s for i, s in zip(op.attrs["index"], op.attrs["shape"])]
    with g.nest(out.shape) as e:
        src = [g.b.add(i, I64(f)) if f else i for i, f in zip(e, first)]
        g.st(out, g.flat(e, out.shape), g.ld(x, g.flat(src, x.shape)))


# ---- reductions and scans ------------------------------------------------------------------------

def _int_limit(dt, high):
    if dt.is_bool:
        return const(dt, high)
    if dt.kind == "u":
        return const(dt, (1 << dt.bits) - 1 if high else 0)
    return const(dt, (1 << (dt.bits - 1)) - 1 if high else -(1 << (dt.bits - 1)))


class _Acc:
    """How one reduction accumulates: its register type, identity, step and final conversion."""

    def __init__(self, g, fn, dt):
        self.g, self.fn, self.dt = g, fn, dt
        wide = dt.is_float and fn in ("sum", "prod", "cumsum", "cumprod")
        self.type = F64 if wide else (compute_type(dt) if dt.is_float else reg_type(dt))
        self.wide = wide

    def identity(self):
        fn, t = self.fn, self.type
        if fn in ("sum", "cumsum"):
            return ir.Constant(t, 0.0 if self.dt.is_float else 0)
        if fn in ("prod", "cumprod"):
            return ir.Constant(t, 1.0 if self.dt.is_float else 1)
        if self.dt.is_float:
            return ir.Constant(t, float("-inf") if fn == "max" else float("inf"))
        return _int_limit(self.dt, fn == "min")

    def step(self, acc, v):
        b, dt = self.g.b, self.dt
        if dt.is_float:
            x = to_compute(b, v, dt)
            if self.wide and x.type != F64:
                x = b.fpext(x, F64)
            if self.fn in ("sum", "prod"):
                return (b.fadd if self.fn == "sum" else b.fmul)(acc, x, flags=FAST_SUM)
            if self.fn in ("cumsum", "cumprod"):
                return (b.fadd if self.fn == "cumsum" else b.fmul)(acc, x)
            # max/min: NumPy's maximum(acc, x), NaN-propagating
            return E.binary(b, "maximum" if self.fn == "max" else "minimum", acc, x, _compute_dtype(dt))
        if self.fn in ("sum", "cumsum"):
            return b.add(acc, v)
        if self.fn in ("prod", "cumprod"):
            return b.mul(acc, v)
        return E.binary(b, "maximum" if self.fn == "max" else "minimum", acc, v, dt)

    def finish(self, acc, out_dt):
        if self.dt.is_float:  # the reference rounds with NumPy's astype: no saturation
            return from_compute(self.g.b, acc, out_dt)
        return cast(self.g.b, acc, self.dt, out_dt)


def _compute_dtype(dt):
    return D.float64 if dt is D.float64 else D.float32


def _split(shape, axes):
    kept = [d for d in range(len(shape)) if d not in axes]
    return kept, [shape[d] for d in kept], [shape[d] for d in axes]


def _join(kept, ko, axes, ki):
    full = [None] * (len(kept) + len(axes))
    for d, i in zip(kept, ko):
        full[d] = i
    for d, i in zip(axes, ki):
        full[d] = i
    return full


def _reduce(g, op):
    x, out = g.buf(op.operands[0]), g.result(op.result)
    fn, axes = op.attrs["fn"], tuple(op.attrs["axes"])
    kept, kept_shape, red_shape = _split(x.shape, axes)
    if fn in ("argmax", "argmin"):
        return _argreduce(g, x, out, fn, axes[0])
    acc = _Acc(g, fn, x.dt)
    slot = g.slot(acc.type)
    with g.nest(kept_shape) as ko:
        g.b.store(acc.identity(), slot)
        with g.nest(red_shape) as ki:
            v = g.ld(x, g.flat(_join(kept, ko, axes, ki), x.shape))
            g.b.store(acc.step(g.b.load(slot, typ=acc.type), v), slot)
        g.st(out, g.flat(ko, kept_shape), acc.finish(g.b.load(slot, typ=acc.type), out.dt))


def _argreduce(g, x, out, fn, axis):
    """NumPy's argmax/argmin: the first extreme element, or the first NaN."""
    b, dt = g.b, x.dt
    kept, kept_shape, (n,) = _split(x.shape, (axis,))
    t = compute_type(dt) if dt.is_float else reg_type(dt)
    best, where = g.slot(t), g.slot(I32)

    def value(ko, k):
        v = g.ld(x, g.flat(_join(kept, ko, (axis,), [k]), x.shape))
        return to_compute(b, v, dt) if dt.is_float else v
    with g.nest(kept_shape) as ko:
        b.store(value(ko, I64(0)), best)
        b.store(I32(0), where)
        with g.loop(n) as k:
            v, cur = value(ko, k), b.load(best, typ=t)
            if dt.is_float:  # take when !(v <= cur) [argmax], unless cur is already NaN
                better = b.fcmp_unordered(">" if fn == "argmax" else "<", v, cur)
                better = b.and_(better, b.fcmp_ordered("ord", cur, cur))
            else:
                cmp = b.icmp_signed if dt.kind == "i" else b.icmp_unsigned
                better = cmp(">" if fn == "argmax" else "<", v, cur)
            b.store(b.select(better, v, cur), best)
            b.store(b.select(better, b.trunc(k, I32), b.load(where, typ=I32)), where)
        g.st(out, g.flat(ko, kept_shape), b.load(where, typ=I32))


def _scan(g, op):
    x, out = g.buf(op.operands[0]), g.result(op.result)
    axis = op.attrs["axis"]
    kept, kept_shape, (n,) = _split(x.shape, (axis,))
    acc = _Acc(g, op.attrs["fn"], x.dt)
    slot = g.slot(acc.type)
    with g.nest(kept_shape) as ko:
        g.b.store(acc.identity(), slot)
        with g.loop(n) as k:
            at = g.flat(_join(kept, ko, (axis,), [k]), x.shape)
            a = acc.step(g.b.load(slot, typ=acc.type), g.ld(x, at))
            g.b.store(a, slot)
            g.st(out, at, acc.finish(a, out.dt))


# ---- matmul --------------------------------------------------------------------------------------

def _matmul(g, op):
    xv, yv, *accv = op.operands
    x, y, out = g.buf(xv), g.buf(yv), g.result(op.result)
    in_dt, out_dt = x.dt, out.dt
    if in_dt.is_float:
        work = D.float64 if D.float64 in (in_dt, out_dt) else D.float32
    else:
        work = D.int64
    wt = reg_type(work)
    *batch, m, kk = x.shape
    n = y.shape[-1]
    c = g.new_buf(TileType((m, n), work))
    b = g.b
    acc = g.buf(accv[0]) if accv else None

    def widen(v):
        return cast(b, v, in_dt, work)
    with g.nest(batch) as bi:
        nb = g.flat(bi, batch) if batch else I64(0)
        base = [b.mul(nb, I64(s)) for s in (m * kk, kk * n, m * n)]
        with g.loop(m * n) as i:
            init = cast(b, g.ld(acc, b.add(base[2], i)), acc.dt, work) if acc else ir.Constant(wt, 0)
            g.st(c, i, init)
        with g.loop(m) as i:
            with g.loop(kk) as k:
                a = widen(g.ld(x, b.add(base[0], b.add(b.mul(i, I64(kk)), k))))
                with g.loop(n) as j:
                    bv = widen(g.ld(y, b.add(base[1], b.add(b.mul(k, I64(n)), j))))
                    at = b.add(b.mul(i, I64(n)), j)
                    if work.is_float:
                        s = b.fadd(g.ld(c, at), b.fmul(a, bv, flags=("contract",)), flags=("contract",))
                    else:
                        s = b.add(g.ld(c, at), b.mul(a, bv))
                    g.st(c, at, s)
        with g.loop(m * n) as i:
            g.st(out, b.add(base[2], i), cast(b, g.ld(c, i), work, out_dt))


LOWER = {"reshape": _reshape, "broadcast": _broadcast, "permute": _permute, "cat": _cat, "extract": _extract,
         "reduce": _reduce, "scan": _scan, "matmul": _matmul}
