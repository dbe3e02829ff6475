"""Global memory: tile loads and stores (bounds-checked against the runtime shape, honouring `order`),
gather/scatter at index tiles, and atomics (atomicrmw where LLVM has the op, a cmpxchg loop otherwise).

A tile load or store first tests whether the whole tile is inside the array; if so it runs a loop
nest without per-element checks (the common case, and the one that vectorises), else a checked one."""
from __future__ import annotations

import numpy as np
from llvmlite import ir

from ...ir import dtypes as D
from ..reference import semantics as M
from . import elementwise as E
from . import streaming
from .elements import I1, I64, const, ext64, host_value, mem_type, to_mem, to_reg
from .fusion import FusedLoad, versioned


def array_ptr(g, arr, offset):
    return g.b.gep(arr.ptr, [offset], source_etype=mem_type(arr.dt))


def _view(g, op, arr, idx_values, shape):
    """Per tile dimension k: the extent and stride of the array dimension it walks, and its first element."""
    order = op.attrs["order"]
    starts = [g.b.mul(g.index64(v), I64(s)) for v, s in zip(idx_values, shape)]
    return [arr.shape[o] for o in order], [arr.strides[o] for o in order], starts


def _all_inside(g, extents, starts, shape):
    b = g.b
    ok = I1(1)
    for n, s0, s in zip(extents, starts, shape):
        ok = b.and_(ok, b.and_(b.icmp_signed(">=", s0, I64(0)), b.icmp_signed("<=", b.add(s0, I64(s)), n)))
    return ok


def _coords(g, starts, e):
    return [g.b.add(s0, i) for s0, i in zip(starts, e)]


def tile_element_ptr(g, arr, starts, strides, e):
    """The address of the element at tile coordinates `e` of a tile starting at `starts` (per tile
    dimension, with the strides of the array dimensions they walk)."""
    return array_ptr(g, arr, coords_offset(g, _coords(g, starts, e), strides))


def _box(g, extents, starts, shape):
    """The part of the tile inside the array, per dimension [lo, hi) in tile coordinates."""
    b = g.b

    def clamp(v, n):
        v = b.select(b.icmp_signed("<", v, I64(0)), I64(0), v)
        return b.select(b.icmp_signed(">", v, I64(n)), I64(n), v)
    return ([clamp(b.neg(s0), s) for s0, s in zip(starts, shape)],
            [clamp(b.sub(n, s0), s) for n, s0, s in zip(extents, starts, shape)])


def coords_offset(g, coords, strides):
    b = g.b
    off = I64(0)
    for c, s in zip(coords, strides):
        off = b.add(off, b.mul(c, s))
    return off


def in_range(g, coords, extents):
    ok = I1(1)
    for c, n in zip(coords, extents):
        ok = g.b.and_(ok, g.b.icmp_unsigned("<", c, n))  # unsigned: a negative coordinate is huge
    return ok


def padding(g, mode, dt):
    """The padding register for a load, as the reference computes it (UNDETERMINED reads zero, or a
    poison value under TILEWISE_POISON=1, fixed when the kernel is compiled)."""
    if mode == "undetermined":
        pad = (np.nan if dt.is_float else np.iinfo(dt.np).max if dt.is_int else True) if g.poison else 0
    else:
        pad = M.padding_value(mode, dt)
    return const(dt, np.array(pad).astype(dt.np) if dt.is_float else host_value(pad, dt))


def lower_load(g, op):
    arr, *idx = op.operands
    arr = g.array(arr)
    shape = tuple(op.attrs["shape"])
    extents, strides, starts = _view(g, op, arr, idx, shape)
    b, t = g.b, mem_type(arr.dt)

    def copy(out, lo=None, hi=None):
        with g.nest(hi or shape, lo) as e:
            v = b.load(tile_element_ptr(g, arr, starts, strides, e), typ=t)
            g.st(out, g.flat(e, shape), to_reg(b, v, arr.dt))

    def partial(out):  # pad everything, then copy the box that lies inside the array
        pad = padding(g, op.attrs["padding"], arr.dt)
        with g.loop(out.size) as i:
            g.st(out, i, pad)
        copy(out, *_box(g, extents, starts, shape))

    inside = _all_inside(g, extents, starts, shape)
    if op.result.id in g.inlined:  # its consumers read the array themselves (fusion.py), or, where some
        # tile reaches outside its array, a copy made by `partial` (less code than both paths, as fast)
        g.fused_loads[op.result.id] = FusedLoad(lambda e: tile_element_ptr(g, arr, starts, strides, e), len(starts),
                                                inside, op.result.type, partial)
        return
    out = g.result(op.result)
    g.if_then(inside, lambda: copy(out), lambda: partial(out))


def lower_store(g, op):
    """The tile may be an inlined element-wise value (fusion.py): its elements are computed here."""
    arr, *idx, tile = op.operands
    arr = g.array(arr)
    shape = tuple(tile.type.shape)
    extents, strides, starts = _view(g, op, arr, idx, shape)
    b = g.b

    def row_ptr(e):
        return tile_element_ptr(g, arr, starts, strides, e)

    def copy(lo=None, hi=None):
        with g.nest(hi or shape, lo) as e:
            b.store(to_mem(b, g.element(tile, g.flat(e, shape), e), arr.dt), row_ptr(e))

    def inside():
        if streaming.applies(g, arr, shape):
            g.if_then(streaming.worth_it(g, arr, extents, strides),
                      lambda: streaming.store(g, arr, tile, shape, row_ptr), copy)
        else:
            copy()
    versioned(g, [tile], lambda: g.if_then(_all_inside(g, extents, starts, shape), inside,
                                           lambda: copy(*_box(g, extents, starts, shape))))


def _indexed(g, op, n_values):
    """(array, index bufs, value bufs, mask buf or None) of gather/scatter/atomic."""
    arr = g.array(op.operands[0])
    rest = op.operands[1:]
    nd = len(arr.shape)
    idx = [(g.buf(v), v.type.dtype) for v in rest[:nd]]
    vals = [g.buf(v) for v in rest[nd:nd + n_values]]
    mask = g.buf(rest[nd + n_values]) if op.attrs.get("masked") else None
    return arr, idx, vals, mask


def _element(g, arr, idx, mask, i):
    """Offset and in-range flag of element i of the index tiles."""
    coords = [ext64(g.b, g.ld(buf, i), dt) for buf, dt in idx]
    ok = in_range(g, coords, arr.shape)
    if mask is not None:
        ok = g.b.and_(ok, g.ld(mask, i))
    return coords_offset(g, coords, arr.strides), ok


def lower_gather(g, op):
    arr, idx, _, mask = _indexed(g, op, 0)
    out = g.result(op.result)
    b, t = g.b, mem_type(arr.dt)
    pv = op.attrs["padding_value"]
    src = D.float64 if isinstance(pv, float) else D.int64
    pad = const(arr.dt, M.cast(np.array(pv, dtype=src.np), src, arr.dt))
    pad_slot = g.slot(t)
    b.store(to_mem(b, pad, arr.dt), pad_slot)
    with g.loop(out.size) as i:
        off, ok = _element(g, arr, idx, mask, i)
        p = b.select(ok, array_ptr(g, arr, off), pad_slot)
        g.st(out, i, to_reg(b, b.load(p, typ=t), arr.dt))


def lower_scatter(g, op):
    arr, idx, (vals,), mask = _indexed(g, op, 1)
    b, t = g.b, mem_type(arr.dt)
    with g.loop(vals.size) as i:
        off, ok = _element(g, arr, idx, mask, i)
        g.if_then(ok, lambda: b.store(b.load(g.elem_ptr(vals, i), typ=t), array_ptr(g, arr, off)))


_RMW_INT = {"add": "add", "and": "and", "or": "or", "xor": "xor", "xchg": "xchg"}


def _atomic_one(g, kind, dt, p, vals, i):
    """One atomic update at pointer p; returns the old value (register form)."""
    b, t = g.b, mem_type(dt)
    v = to_mem(b, g.ld(vals[0], i), dt)
    if kind == "xchg" or (not dt.is_float and kind in ("add", "and", "or", "xor", "max", "min")):
        if kind in ("max", "min"):
            op = ("" if dt.kind == "i" else "u") + kind
        elif kind == "add" and dt.is_bool:
            op = "or"  # NumPy's bool add
        else:
            op = _RMW_INT[kind]
        if dt.is_float:  # exchange the bits
            bits = ir.IntType(dt.bits)
            return b.bitcast(b.atomic_rmw("xchg", p, b.bitcast(v, bits), "seq_cst"), t)
        return to_reg(b, b.atomic_rmw(op, p, v, "seq_cst"), dt)
    if kind == "cas" and not dt.is_float:
        new = to_mem(b, g.ld(vals[1], i), dt)
        return to_reg(b, b.extract_value(b.cmpxchg(p, v, new, "seq_cst", "seq_cst"), 0), dt)
    return _cas_loop(g, kind, dt, p, vals, i)


def _cas_loop(g, kind, dt, p, vals, i):
    """Float atomics as compare-and-swap on the bits: new = op(old, value) with the reference's
    element semantics (narrow floats round once; cas compares values, so -0.0 matches 0.0)."""
    b, t = g.b, mem_type(dt)
    bits = ir.IntType(dt.bits)
    upd = g.ld(vals[0], i)
    entry = b.block
    first = b.load_atomic(p, "monotonic", dt.itemsize, typ=bits)
    loop, done = g.func.append_basic_block("cas"), g.func.append_basic_block("cas.end")
    b.branch(loop)
    b.position_at_end(loop)
    cur = b.phi(bits)
    cur.add_incoming(first, entry)
    old = b.bitcast(cur, t)
    if kind == "cas":
        hit = E.binary(b, "eq", old, upd, dt)
        new = b.select(hit, g.ld(vals[1], i), old)
    else:
        fn = {"add": "add", "max": "maximum", "min": "minimum"}[kind]
        new = E.binary(b, fn, old, upd, dt)
    pair = b.cmpxchg(p, cur, b.bitcast(new, bits), "seq_cst", "seq_cst")
    cur.add_incoming(b.extract_value(pair, 0), b.block)
    b.cbranch(b.extract_value(pair, 1), done, loop)
    b.position_at_end(done)
    return old


def lower_atomic(g, op):
    kind = op.attrs["kind"]
    arr, idx, vals, mask = _indexed(g, op, 2 if kind == "cas" else 1)
    out = g.result(op.result)
    b = g.b
    zero = const(arr.dt, np.zeros((), arr.dt.np))
    old_slot = g.slot(mem_type(arr.dt))
    with g.loop(out.size) as i:
        off, ok = _element(g, arr, idx, mask, i)
        b.store(to_mem(b, zero, arr.dt), old_slot)

        def update():
            old = _atomic_one(g, kind, arr.dt, array_ptr(g, arr, off), vals, i)
            b.store(to_mem(b, old, arr.dt), old_slot)
        g.if_then(ok, update)
        g.st(out, i, to_reg(b, b.load(old_slot, typ=mem_type(arr.dt)), arr.dt))


LOWER = {"load": lower_load, "store": lower_store, "gather": lower_gather, "scatter": lower_scatter,
         "atomic": lower_atomic}
