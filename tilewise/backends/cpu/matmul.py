"""matmul/mma on the cpu backend: a register-blocked micro-kernel in explicit LLVM vector code.

Products run in the work type (`work_dtype`: float32 or float64 for floats, fp16/bf16/fp8/tf32 inputs
widened exactly, once, before the K loop; int32 or int64 for integers and bool). The output is cut into
MR x NR register blocks; each block keeps MR x (NR / lanes) vector accumulators in registers across
the whole K loop, where every step loads NR elements of one B row and broadcasts one A element per row
into llvm.fmuladd (an FMA on hosts that have one; integers multiply and add, wrapping). B is packed
into K x NR panels, contiguous in K, when it needs converting or its rows are long (see
`_should_pack`); a partial last panel is as wide as what is left. Edges use the same code with fewer
rows and narrower (power-of-two, down to scalar) column vectors, so every shape, down to 1 x 1 x 1,
takes one exact path. The lane count is picked when the kernel is generated, from the target CPU's
vectors (compiler.vector_shape: AVX-512 64 bytes, AVX 32, else 16). A loop's `acc = mma(a, b, acc)` writes
over its accumulator (`_overwritable`), so the loop's yield has nothing to copy.
"""
from __future__ import annotations

import weakref
from collections import Counter

from llvmlite import ir

from ...ir import dtypes as D
from ...ir.types import TileType
from .elements import I32, I64, cast, mem_type, reg_type
from .llvmutil import intrinsic

_PACK_ROW_BYTES = 1024  # 128-float rows still fit in L1 unpacked (measured: packing them gains nothing)


def block_shape(work):
    """(MR, NR, lanes) for a work dtype: two vectors of columns, and as many rows as leave registers for
    the two B vectors and one broadcast A element."""
    from .compiler import vector_shape
    vbytes, regs = vector_shape()
    lanes = vbytes // work.itemsize
    return min((regs - 3) // 2, 8), 2 * lanes, lanes


def work_dtype(in_dt, out_dt):
    """What the products and sums run in. Floats: float64 if an operand or the result is float64, else
    float32. Integers and bool: the reference's int64, or int32 when the result is an integer of at most
    32 bits, whose bits equal those of the int64 sum wrapped (arithmetic modulo 2**32)."""
    if in_dt.is_float:
        return D.float64 if D.float64 in (in_dt, out_dt) else D.float32
    return D.int32 if out_dt.is_int and out_dt.bits <= 32 else D.int64


def lower(g, op):
    xv, yv, *accv = op.operands
    x, y = g.buf(xv), g.buf(yv)
    acc = g.buf(accv[0]) if accv else None
    if acc is not None and _overwritable(g.fn, op, accv[0]):
        out = g.values[op.result.id] = acc
    else:
        out = g.result(op.result)
    work = work_dtype(x.dt, out.dt)
    *batch, m, kk = x.shape
    n = y.shape[-1]
    mr, nr, lanes = block_shape(work)
    b = g.b
    a = x if _same(x.dt, work, inputs=True) else _widened(g, x, work)
    pack = _should_pack(y.dt, work, n)
    panel = g.new_buf(TileType((kk, n), work)) if pack else y
    with g.nest(batch) as bi:
        nb = g.flat(bi, batch) if batch else I64(0)
        xo, yo, co = (b.mul(nb, I64(s)) for s in (m * kk, kk * n, m * n))
        if pack:
            _pack(g, y, yo, panel, kk, n, nr, work)
        full_n, rest_n = divmod(n, nr)
        full_m, rest_m = divmod(m, mr)
        col_kinds = [(full_n, 0, [lanes] * (nr // lanes))]
        if rest_n:
            col_kinds.append((1, full_n * nr, _pieces(rest_n, lanes)))
        row_kinds = [(full_m, 0, mr)]
        if rest_m:
            row_kinds.append((1, full_m * mr, rest_m))
        for ncol, j_first, widths in col_kinds:
            if not ncol:
                continue
            with g.loop(ncol) as jb:
                j0 = b.add(I64(j_first), b.mul(jb, I64(nr)))
                # this column block of B: K rows of `width` in its panel, or in place (row stride N)
                bp, ldb = (b.mul(j0, I64(kk)), sum(widths)) if pack else (b.add(yo, j0), n)
                for nrow, i_first, rows in row_kinds:
                    if not nrow:
                        continue
                    with g.loop(nrow) as ib:
                        i0 = b.add(I64(i_first), b.mul(ib, I64(mr)))
                        _block(g, a, b.add(xo, b.mul(i0, I64(kk))), kk, panel, bp, ldb,
                               acc, out, b.add(co, b.add(b.mul(i0, I64(n)), j0)), n, rows, widths, work)


_CARRIED = weakref.WeakKeyDictionary()


def _overwritable(fn, op, acc):
    """Whether the result may be written over the accumulator's buffer: acc is a value a `for` loop
    carries (a block argument of its body, whose buffer is the loop's own), this op in that body is its
    only use, and so nothing reads it later. The usual `acc = mma(a, b, acc)` then runs in place and
    the loop's yield copies nothing. Every result element is written after its acc element is read."""
    info = _CARRIED.get(fn)
    if info is None:
        uses, carried = Counter(), {}
        for o in fn.walk():
            uses.update(v.id for v in o.operands)
            if o.name == "for":
                body = o.regions[0]
                carried.update((a.id, body) for a in body.args[1:])
        info = _CARRIED[fn] = (uses, carried)
    uses, carried = info
    body = carried.get(acc.id)
    return body is not None and uses[acc.id] == 1 and any(o is op for o in body.ops)


def _same(dt, work, inputs=False):
    """Whether values of dt are already work values: the same dtype, integers of the same width, or (as
    inputs only: a tf32 result must still be rounded) tf32 for float32."""
    return dt is work or (dt.is_int and work.is_int and dt.bits == work.bits) or \
        (inputs and dt is D.tfloat32 and work is D.float32)


def _widened(g, x, work):
    """x converted once to the work dtype (narrow floats exactly; float32 to float64 exactly)."""
    w = g.new_buf(TileType(x.shape, work))
    with g.loop(x.size) as i:
        g.st(w, i, cast(g.b, g.ld(x, i), x.dt, work))
    return w


def _should_pack(dt, work, n):
    """Pack B when it needs converting anyway, or when its rows are long enough that the K loop's
    stride would walk few cache sets (rows of 1 KiB or more); a short-row tile sits in L1 as it is."""
    return not _same(dt, work, inputs=True) or n * work.itemsize >= _PACK_ROW_BYTES


def _pack(g, y, yo, panel, kk, n, nr, work):
    """B (one batch: K x N from offset yo) into panels: the column block starting at j0, `w` wide, holds
    its K rows contiguously at panel[j0 * K + k * w + c]. Converts to the work type on the way."""
    b = g.b
    full, rest = divmod(n, nr)
    for count, first, w in ((full, 0, nr), (1, full * nr, rest)):
        if not count or not w:
            continue
        with g.loop(count) as jb:
            j0 = b.add(I64(first), b.mul(jb, I64(nr)))
            with g.loop(kk) as k:
                src = b.add(yo, b.add(b.mul(k, I64(n)), j0))
                dst = b.add(b.mul(j0, I64(kk)), b.mul(k, I64(w)))
                with g.loop(w) as c:
                    g.st(panel, b.add(dst, c), cast(b, g.ld(y, b.add(src, c)), y.dt, work))


def _pieces(n, lanes):
    """Column widths for an edge of n < NR columns: full vectors, then halving vectors down to scalars."""
    out, w = [], lanes
    while n:
        while w > n:
            w //= 2
        out.append(w)
        n -= w
    return out


def _vec(work, w):
    t = reg_type(work)
    return t if w == 1 else ir.VectorType(t, w)


def _fmuladd(module, t):
    """llvm.fmuladd for a scalar or vector type (llvmlite's types name only scalars for intrinsics)."""
    if not isinstance(t, ir.VectorType):
        return intrinsic(module, "llvm.fmuladd", t, [t] * 3)
    name = f"llvm.fmuladd.v{t.count}{t.element.intrinsic_name}"
    fn = module.globals.get(name)
    return fn if fn is not None else ir.Function(module, ir.FunctionType(t, [t] * 3), name)


def _zero(work, w):
    z = 0.0 if work.is_float else 0
    return ir.Constant(reg_type(work), z) if w == 1 else ir.Constant(_vec(work, w), [z] * w)


def _splat(b, v, w):
    if w == 1:
        return v
    t = ir.VectorType(v.type, w)
    one = b.insert_element(ir.Constant(t, ir.Undefined), v, I32(0))
    return b.shuffle_vector(one, ir.Constant(t, ir.Undefined), ir.Constant(ir.VectorType(I32, w), [0] * w))


def _block(g, a, a0, lda, panel, bp, ldb, acc, out, c0, ldc, rows, widths, work):
    """One rows x sum(widths) block of the result at c0 (row stride ldc): accumulators in registers over
    the K loop, reading A rows from a0 (stride lda) and B rows from bp (stride ldb: a packed panel's
    width, or N in place)."""
    b = g.b
    et, size = mem_type(work), work.itemsize
    offs = [sum(widths[:c]) for c in range(len(widths))]
    fma = {w: _fmuladd(b.module, _vec(work, w)) for w in set(widths)} if work.is_float else None

    def ptr(buf, i, t=et):
        return b.gep(buf.ptr, [i], source_etype=t, inbounds=True)

    init = []
    for r in range(rows):
        for off, w in zip(offs, widths):
            at = b.add(c0, I64(r * ldc + off))
            init.append(_load_c(g, acc, at, w, work) if acc is not None else _zero(work, w))

    def step(k, accs):
        brow = b.add(bp, b.mul(k, I64(ldb)))
        bv = [b.load(ptr(panel, b.add(brow, I64(off))), typ=_vec(work, w), align=size) for off, w in zip(offs, widths)]
        new = []
        for r in range(rows):
            av = b.load(ptr(a, b.add(a0, b.add(I64(r * lda), k))), typ=et)
            for c, w in enumerate(widths):
                s, old = _splat(b, av, w), accs[len(new)]
                new.append(b.call(fma[w], [s, bv[c], old]) if fma else b.add(b.mul(s, bv[c]), old))
        return new

    accs = _carried_loop(g, lda, init, step)
    for r in range(rows):
        for c, (off, w) in enumerate(zip(offs, widths)):
            _store_c(g, out, b.add(c0, I64(r * ldc + off)), accs[r * len(widths) + c], w, work)


def _carried_loop(g, n, init, body):
    """for k in range(n) (n a Python int >= 1) carrying SSA values; returns their final values."""
    b = g.b
    if n == 1:
        return body(I64(0), init)
    pre = b.block
    loop, after = g.func.append_basic_block("mm.k"), g.func.append_basic_block("mm.k.end")
    b.branch(loop)
    b.position_at_end(loop)
    k = b.phi(I64)
    k.add_incoming(I64(0), pre)
    phis = []
    for v in init:
        p = b.phi(v.type)
        p.add_incoming(v, pre)
        phis.append(p)
    new = body(k, phis)
    nxt = b.add(k, I64(1), flags=["nuw", "nsw"])
    k.add_incoming(nxt, b.block)
    for p, v in zip(phis, new):
        p.add_incoming(v, b.block)
    b.cbranch(b.icmp_signed("<", nxt, I64(n)), loop, after)
    b.position_at_end(after)
    return new


def _load_c(g, buf, at, w, work):
    b = g.b
    if _same(buf.dt, work):
        p = b.gep(buf.ptr, [at], source_etype=mem_type(work), inbounds=True)
        return b.load(p, typ=_vec(work, w), align=work.itemsize)
    vals = [cast(b, g.ld(buf, b.add(at, I64(c))), buf.dt, work) for c in range(w)]
    if w == 1:
        return vals[0]
    v = ir.Constant(_vec(work, w), ir.Undefined)
    for c, s in enumerate(vals):
        v = b.insert_element(v, s, I32(c))
    return v


def _store_c(g, buf, at, v, w, work):
    b = g.b
    if _same(buf.dt, work):
        p = b.gep(buf.ptr, [at], source_etype=mem_type(work), inbounds=True)
        b.store(v, p, align=work.itemsize)
        return
    for c in range(w):
        s = v if w == 1 else b.extract_element(v, I32(c))
        g.st(buf, b.add(at, I64(c)), cast(b, s, work, buf.dt))
