"""Shape ops, reductions and scans as loop nests over tile buffers (matmul: matmul.py).

Accumulation follows the reference: float sums, products and scans accumulate in float64 (sums and
products may be reassociated so they vectorise; the result differs from NumPy's pairwise sum only
far below the output dtype's precision); integer ones wrap in their own width."""
from __future__ import annotations

from llvmlite import ir

from ...ir import dtypes as D
from . import elementwise as E
from . import fusion, matmul
from .buffers import Buf
from .elements import F64, I32, I64, cast, compute_type, const, from_compute, intrinsic, reg_type, to_compute
from .fusion import versioned

FAST_SUM = ("reassoc", "contract")


def _reshape(g, op):
    if op.result.id in g.inlined:  # fusion.unit_reshape: computed where it is read
        return
    if op.operands[0].id in g.inlined:  # an inlined operand has no buffer to share: fill one
        return fusion.lower(g, op)
    src = g.buf(op.operands[0])  # tiles are immutable, so the result can share the row-major buffer
    g.values[op.result.id] = Buf(src.ptr, src.dt, op.result.type.shape)


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
    dynamic = iter(op.operands[1:])
    first = [i * s if i is not None else _clamped_start(g, next(dynamic), s, n)
             for i, s, n in zip(op.attrs["index"], op.attrs["shape"], x.shape)]
    with g.nest(out.shape) as e:
        src = [i if isinstance(f, int) and not f else g.b.add(i, I64(f) if isinstance(f, int) else f)
               for i, f in zip(e, first)]
        g.st(out, g.flat(e, out.shape), g.ld(x, g.flat(src, x.shape)))


def _clamped_start(g, value, s, n):
    """A run-time sub-tile index as an element offset, clamped to the last whole sub-tile (ir/ops.py)."""
    b, v = g.b, g.index64(value)
    v = b.select(b.icmp_signed("<", v, I64(0)), I64(0), v)
    v = b.select(b.icmp_signed(">", v, I64(n // s - 1)), I64(n // s - 1), v)
    return b.mul(v, I64(s))


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
            # max/min propagate NaN, as np.max does; llvm.maximum/minimum say exactly that and, unlike a
            # compare-and-select, vectorise as a reduction. (The sign of a zero result may differ from
            # np.max's when both zeros occur; np.max leaves that to its SIMD kernels too.)
            name = "llvm.maximum" if self.fn == "max" else "llvm.minimum"
            return b.call(intrinsic(b.module, name, acc.type, [acc.type, acc.type]), [acc, x])
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
    """The input may be an inlined value (fusion.py): its elements are computed here."""
    out = g.result(op.result)
    versioned(g, op.operands[:1], lambda: _reduce_into(g, op, out))


def _reduce_into(g, op, out):
    x = op.operands[0]
    fn, axes = op.attrs["fn"], tuple(op.attrs["axes"])
    kept, kept_shape, red_shape = _split(x.type.shape, axes)
    if fn in ("argmax", "argmin"):
        return _argreduce(g, x, out, fn, axes[0])
    acc = _Acc(g, fn, x.type.dtype)
    slot = g.slot(acc.type)
    with g.nest(kept_shape) as ko:
        g.b.store(acc.identity(), slot)
        with g.nest(red_shape) as ki:
            at = _join(kept, ko, axes, ki)
            v = g.element(x, g.flat(at, x.type.shape), at)
            g.b.store(acc.step(g.b.load(slot, typ=acc.type), v), slot)
        g.st(out, g.flat(ko, kept_shape), acc.finish(g.b.load(slot, typ=acc.type), out.dt))


def _argreduce(g, x, out, fn, axis):
    """NumPy's argmax/argmin: the first extreme element, or the first NaN."""
    b, dt = g.b, x.type.dtype
    kept, kept_shape, (n,) = _split(x.type.shape, (axis,))
    t = compute_type(dt) if dt.is_float else reg_type(dt)
    best, where = g.slot(t), g.slot(I32)

    def value(ko, k):
        at = _join(kept, ko, (axis,), [k])
        v = g.element(x, g.flat(at, x.type.shape), at)
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


LOWER = {"reshape": _reshape, "permute": _permute, "cat": _cat, "extract": _extract,
         "reduce": _reduce, "scan": _scan, "matmul": matmul.lower}
