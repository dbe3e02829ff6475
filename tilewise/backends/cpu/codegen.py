"""Tile IR -> LLVM IR for one kernel.

A tile value that needs storage lives in a stack buffer of its static shape (an alloca in the entry
block, so loops never grow the stack; scalars become registers after SROA) and every op is a loop nest
over elements that LLVM's vectoriser takes from there. Element-wise chains and single-use loads get no
buffer at all: fusion.py computes them inside the loop of the op that reads them (a store, a reduction,
the last op of the chain). Structured control flow maps to basic blocks: a for/while/if op's results
are buffers that its regions' yields copy into, and a region's block arguments are those same buffers.
Two functions come out:

    i32 tw_block(ptr args, ptr meta, i32 bid0, i32 bid1, i32 bid2, i32 nb0, i32 nb1, i32 nb2, ptr status)
    i32 tw_run(ptr args, ptr meta, i64 first, i64 last, i32 nb0, i32 nb1, i32 nb2, ptr status)

`args` holds one pointer per IR parameter (an array's data, or a scalar's storage); `meta` holds each
array parameter's shape then strides, in elements. tw_run runs blocks [first, last) in linear order
(axis 0 fastest) and stops when `status[0]` is set: a failed assert writes its number there and the
block index to status[1:4]."""
from __future__ import annotations

import math
from contextlib import ExitStack, contextmanager

from llvmlite import ir

from ...errors import TileUnsupportedError
from ...ir.types import ArrayType, TileType
from . import compiler, fusion, half, memory, printing, streaming, tileops
from .buffers import ArrayRef, Buf
from .elements import (
    I32,
    I64,
    PTR,
    ext64,
    mem_type,
    reg_type,
    to_mem,
    to_reg,
)
from .loading import ENTRY


class KernelGen:
    def __init__(self, fn, poison=False):
        self.fn, self.poison = fn, poison
        self.module = ir.Module(name=f"tilewise.{fn.name}")
        self.values = {}
        self.asserts = []      # (message, loc) per assert op, numbered from 1 in status[0]
        self.frame_bytes = 0   # stack the block function needs (all tile buffers)
        self.loc = None
        self.printf_handle = None  # set when the kernel prints (printing.py)
        _check_supported(fn)
        # values computed inside their consumers' loops, and those cut out of deep chains (fusion.py)
        self.inlined, self.cuts = fusion.plan(fn)
        self.cut_buffers = {}           # TileType -> buffers of dead chain cuts, for the next cut
        self.fused_loads = {}           # inlined load's value id -> fusion.FusedLoad
        self.multi = {}                 # id(op) -> whether its element needs a multi-index (fusion.py)
        self.checked_loads = None       # inside fusion.versioned: whether inlined loads check bounds
        self.streaming_ok = streaming.kernel_may_stream(fn, compiler.host_triple())
        self.streaming_used = False
        self._block_fn()
        self._run_fn()
        if compiler.lacks_f16c() and half.needed(str(self.module)):
            half.define(self.module)

    # ---- buffers and element access ---------------------------------------------------------------

    def new_buf(self, t: TileType):
        nbytes = math.prod(t.shape) * t.dtype.itemsize
        slot = self.slot(ir.ArrayType(mem_type(t.dtype), max(math.prod(t.shape), 1)), nbytes + 32,
                         32 if nbytes >= 32 else None)
        return Buf(slot, t.dtype, t.shape)

    def slot(self, llty, nbytes=16, align=None, name=""):
        """A scratch stack slot: register-sized ones (accumulators) become SSA values after SROA."""
        self.frame_bytes += nbytes
        slot = self.allocas.alloca(llty, name=name)
        if align:
            slot.align = align
        return _opaque(slot)

    def result(self, value):
        buf = self.values[value.id] = self.new_buf(value.type)
        return buf

    def buf(self, value) -> Buf:
        assert value.id not in self.inlined, f"inlined value {value} has no buffer"
        return self.values[value.id]

    def element(self, value, flat, multi=None):
        """The register value of one element of a tile, whether it has a buffer or is inlined."""
        return fusion.element(self, value, fusion.At(flat, multi))

    def array(self, value) -> ArrayRef:
        return self.values[value.id]

    def elem_ptr(self, buf, i):
        return self.b.gep(buf.ptr, [i], source_etype=mem_type(buf.dt), inbounds=True)

    def ld(self, buf, i):
        return to_reg(self.b, self.b.load(self.elem_ptr(buf, i), typ=mem_type(buf.dt)), buf.dt)

    def st(self, buf, i, v):
        self.b.store(to_mem(self.b, v, buf.dt), self.elem_ptr(buf, i))

    def scalar(self, value):
        return self.ld(self.buf(value), I64(0))

    def index64(self, value):
        return ext64(self.b, self.scalar(value), value.type.dtype)

    def copy(self, dst, src):
        t = mem_type(src.dt)
        with self.loop(src.size) as i:
            self.b.store(self.b.load(self.elem_ptr(src, i), typ=t), self.elem_ptr(dst, i))

    def copy_into(self, targets, sources):
        """Yield semantics: all sources are read before any target is written (a loop may yield its
        carried values swapped, or a reshape that aliases one of them)."""
        pairs = [(t, self.buf(v)) for t, v in zip(targets, sources)]
        pairs = [(t, s) for t, s in pairs if t.ptr is not s.ptr]
        written = {id(t.ptr) for t in targets}
        if any(id(s.ptr) in written for _, s in pairs):
            staged = []
            for t, s in pairs:
                tmp = self.new_buf(TileType(s.shape, s.dt))
                self.copy(tmp, s)
                staged.append((t, tmp))
            pairs = staged
        for t, s in pairs:
            self.copy(t, s)

    # ---- loops ------------------------------------------------------------------------------------

    @contextmanager
    def loop(self, n, start=None):
        """An i64 induction variable over [start, n) (start defaults to 0); `n` is a Python int or an
        i64 value, `start` an i64 value."""
        b = self.b
        static = isinstance(n, int) and start is None
        if static and n == 1:
            yield I64(0)
            return
        count = I64(n) if isinstance(n, int) else n
        first = I64(0) if start is None else start
        pre = b.block
        body = self.func.append_basic_block("loop")
        after = self.func.append_basic_block("loop.end")
        if static and n > 0:
            b.branch(body)
        else:
            b.cbranch(b.icmp_signed("<", first, count), body, after)
        b.position_at_end(body)
        i = b.phi(I64)
        i.add_incoming(first, pre)
        yield i
        nxt = b.add(i, I64(1), flags=["nuw", "nsw"])
        i.add_incoming(nxt, b.block)
        b.cbranch(b.icmp_signed("<", nxt, count), body, after)
        b.position_at_end(after)

    @contextmanager
    def nest(self, shape, starts=None):
        with ExitStack() as stack:
            yield [stack.enter_context(self.loop(n, s)) for n, s in zip(shape, starts or [None] * len(shape))]

    def flat(self, idx, shape):
        """Row-major offset of a multi-index in a tile of static `shape`."""
        b = self.b
        off = I64(0)
        for i, n in zip(idx, shape):
            off = b.add(b.mul(off, I64(n)), i)
        return off

    def if_then(self, cond, then, otherwise=None):
        b = self.b
        t_bb = self.func.append_basic_block("then")
        e_bb = self.func.append_basic_block("else") if otherwise else None
        merge = self.func.append_basic_block("endif")
        b.cbranch(cond, t_bb, e_bb or merge)
        for bb, gen in ((t_bb, then), (e_bb, otherwise)):
            if bb is not None:
                b.position_at_end(bb)
                gen()
                b.branch(merge)
        b.position_at_end(merge)

    # ---- functions --------------------------------------------------------------------------------

    def _block_fn(self):
        ty = ir.FunctionType(I32, [PTR, PTR] + [I32] * 6 + [PTR])
        f = self.func = ir.Function(self.module, ty, "tw_block")
        f.linkage = "internal"
        f.attributes.add("alwaysinline")
        args, meta, *grid, self.status = f.args
        self.bids, self.nblocks = grid[:3], grid[3:]
        entry, start = f.append_basic_block("entry"), f.append_basic_block("start")
        self.allocas = ir.IRBuilder(entry)
        b = self.b = ir.IRBuilder(start)
        offset = 0
        for i, p in enumerate(self.fn.params):
            data = b.load(b.gep(args, [I64(i)], source_etype=PTR), typ=PTR)
            if isinstance(p.type, ArrayType):
                nd = p.type.ndim
                dims = [b.load(b.gep(meta, [I64(offset + k)], source_etype=I64), typ=I64) for k in range(2 * nd)]
                if p.type.unit_stride:  # a constant: no loop is versioned on the stride, and less to compile
                    dims[-1] = I64(1)
                self.values[p.id] = ArrayRef(data, p.type.dtype, dims[:nd], dims[nd:])
                offset += 2 * nd
            else:
                buf = self.values[p.id] = self.new_buf(p.type)
                b.store(b.load(data, typ=mem_type(p.type.dtype)), buf.ptr)
        self.meta_size = offset
        self.gen_block(self.fn.body)
        b.ret(I32(0))
        self.allocas.branch(start)

    def _run_fn(self):
        ty = ir.FunctionType(I32, [PTR, PTR, I64, I64, I32, I32, I32, PTR])
        f = ir.Function(self.module, ty, ENTRY)
        args, meta, first, last, n0, n1, n2, status = f.args
        for a in (args, meta):
            a.add_attribute("noalias")
        entry, loop, go, nxt, done = (f.append_basic_block(n) for n in ("entry", "loop", "go", "next", "done"))
        b = ir.IRBuilder(entry)
        b.cbranch(b.icmp_signed("<", first, last), loop, done)
        b.position_at_end(loop)
        lin = b.phi(I64)
        lin.add_incoming(first, entry)
        stop = b.icmp_signed("!=", b.load_atomic(status, "monotonic", 4, typ=I32), I32(0))
        b.cbranch(stop, done, go)
        b.position_at_end(go)
        w0, w1 = b.zext(n0, I64), b.zext(n1, I64)
        rest = b.udiv(lin, w0)
        bids = [b.trunc(b.urem(lin, w0), I32), b.trunc(b.urem(rest, w1), I32), b.trunc(b.udiv(rest, w1), I32)]
        r = b.call(self.func, [args, meta, *bids, n0, n1, n2, status])
        b.cbranch(b.icmp_signed("!=", r, I32(0)), done, nxt)
        b.position_at_end(nxt)
        following = b.add(lin, I64(1))
        lin.add_incoming(following, nxt)
        b.cbranch(b.icmp_signed("<", following, last), loop, done)
        b.position_at_end(done)
        streaming.fence(self, b)
        b.ret(I32(0))

    def gen_block(self, block):
        """Emit a block's ops; returns the operands of its terminator (yield/return)."""
        for op in block.ops:
            if op.name in ("yield", "return"):
                return op.operands
            self.loc = op.loc
            LOWER[op.name](self, op)
        return []


def _opaque(slot):
    """llvmlite gives allocas a typed pointer type; every access here goes through opaque `ptr`s."""
    slot.type = PTR
    return slot


# ---- structured control flow ---------------------------------------------------------------------

def _bind(g, args, bufs):
    for a, buf in zip(args, bufs):
        g.values[a.id] = buf


def _for(g, op):
    lb, ub, step, *inits = op.operands
    res = [g.result(r) for r in op.results]
    g.copy_into(res, inits)
    b = g.b
    lo, hi, st = (g.index64(v) for v in (lb, ub, step))
    zero, one = I64(0), I64(1)
    pos, neg = b.icmp_signed(">", st, zero), b.icmp_signed("<", st, zero)
    up = b.sdiv(b.add(b.sub(hi, lo), b.sub(st, one)), b.select(pos, st, one))
    down = b.sdiv(b.sub(b.sub(lo, hi), b.add(st, one)), b.select(neg, b.neg(st), one))
    trips = b.select(pos, up, b.select(neg, down, zero))
    trips = b.select(b.icmp_signed("<", trips, zero), zero, trips)
    (body,) = op.regions
    iv = g.new_buf(body.args[0].type)
    g.values[body.args[0].id] = iv
    _bind(g, body.args[1:], res)
    with g.loop(trips) as k:
        v = g.b.add(lo, g.b.mul(k, st))
        g.st(iv, I64(0), g.b.trunc(v, reg_type(iv.dt)) if reg_type(iv.dt) != I64 else v)
        g.copy_into(res, g.gen_block(body))


def _while(g, op):
    res = [g.result(r) for r in op.results]
    g.copy_into(res, op.operands)
    cond, body = op.regions
    _bind(g, cond.args, res)
    _bind(g, body.args, res)
    header, body_bb, after = (g.func.append_basic_block(n) for n in ("while", "while.body", "while.end"))
    g.b.branch(header)
    g.b.position_at_end(header)
    (c,) = g.gen_block(cond)
    g.b.cbranch(g.scalar(c), body_bb, after)
    g.b.position_at_end(body_bb)
    g.copy_into(res, g.gen_block(body))
    g.b.branch(header)
    g.b.position_at_end(after)


def _if(g, op):
    res = [g.result(r) for r in op.results]
    then, other = op.regions
    g.if_then(g.scalar(op.operands[0]), lambda: g.copy_into(res, g.gen_block(then)),
              lambda: g.copy_into(res, g.gen_block(other)))


def _assert(g, op):
    b = g.b
    g.asserts.append((op.attrs["msg"], op.loc))
    code = len(g.asserts)
    ok_bb, fail_bb = g.func.append_basic_block("assert.ok"), g.func.append_basic_block("assert.fail")
    b.cbranch(g.scalar(op.operands[0]), ok_bb, fail_bb)
    b.position_at_end(fail_bb)
    won = b.extract_value(b.cmpxchg(g.status, I32(0), I32(code), "seq_cst", "seq_cst"), 1)

    def record():  # only the first failing block says where it failed
        for k, v in enumerate(g.bids):
            b.store(v, b.gep(g.status, [I64(k + 1)], source_etype=I32))
    g.if_then(won, record)
    b.ret(I32(1))
    b.position_at_end(ok_bb)


def _printf(g, op):
    """A call into Python (printing.py) with the operands' buffer addresses."""
    b = g.b
    if g.printf_handle is None:
        g.printf_ops = [o for o in g.fn.walk() if o.name == "printf"]
        g.printf_handle = printing.register(g.printf_ops)
    fn = g.module.globals.get(printing.SYMBOL) or ir.Function(
        g.module, ir.FunctionType(ir.VoidType(), [I64, I32, I32, I32, I32, PTR]), printing.SYMBOL)
    table = g.slot(ir.ArrayType(PTR, max(len(op.operands), 1)))
    for k, v in enumerate(op.operands):
        b.store(g.buf(v).ptr, b.gep(table, [I64(k)], source_etype=PTR))
    b.call(fn, [I64(g.printf_handle), I32(g.printf_ops.index(op)), *g.bids, table])


# ---- element-wise and scalar ops ----------------------------------------------------------------

def _fill(g, op, value):
    out = g.result(op.result)
    with g.loop(out.size) as i:
        g.st(out, i, value)


LOWER = {
    "for": _for, "while": _while, "if": _if, "assert": _assert,
    "printf": _printf,
    "bid": lambda g, op: _fill(g, op, g.bids[op.attrs["axis"]]),
    "num_blocks": lambda g, op: _fill(g, op, g.nblocks[op.attrs["axis"]]),
    "array_dim": lambda g, op: _fill(g, op, g.b.trunc(g.array(op.operands[0]).shape[op.attrs["axis"]], I32)),
    **{name: fusion.lower for name in fusion.ELEMENTWISE},
    **memory.LOWER,
    **tileops.LOWER,
}


def _check_supported(fn):
    """Refuse, at compile time and naming the op, anything this backend cannot do exactly."""
    for op in fn.walk():
        if op.name not in LOWER and op.name not in ("yield", "return"):
            raise TileUnsupportedError(f"the cpu backend does not implement '{op.name}' yet; "
                                       "use TILEWISE_BACKEND=reference", op.loc)
