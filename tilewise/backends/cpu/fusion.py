"""Fusion of element-wise chains: which values never get a buffer, and how to compute one element.

An element-wise value (unary, binary, where, cast, bitcast, broadcast, constant) is *inlined* when
every use of it reads it element by element in the same block (another element-wise op, a store, a
reduction) and inlining costs no extra work: it has one use of its own shape, or it is a constant or a
broadcast (an index remap). An inlined value has no buffer; each consumer computes its element where
it needs it, so `store(exp(x - broadcast(max)) / broadcast(sum))` is one loop over the tile. Because
uses stay in the defining block, an inlined value's operands are still live and unchanged wherever
the consumer runs (a region's carried buffers change only at its yield, which is not a consumer).

`At` is the position of one element: its row-major offset and, when a broadcast below needs it, its
multi-index."""
from __future__ import annotations

from . import elementwise as E
from .elements import I64, bitcast, cast, const, host_value

ELEMENTWISE = ("unary", "binary", "where", "cast", "bitcast", "broadcast", "constant")
_FREE = ("constant", "broadcast")  # inlined into any number of uses: no arithmetic is repeated


class At:
    __slots__ = ("flat", "multi")

    def __init__(self, flat, multi=None):
        self.flat, self.multi = flat, multi


def plan(fn):
    """Ids of the values to inline (see the module docstring)."""
    uses, block_of = {}, {}

    def visit(block):
        for op in block.ops:
            for pos, v in enumerate(op.operands):
                uses.setdefault(v.id, []).append((op, pos, block))
            for r in op.results:
                block_of[r.id] = block
            for region in op.regions:
                visit(region)
    visit(fn.body)
    inlined = set()
    for op in fn.walk():
        if op.name not in ELEMENTWISE:
            continue
        v = op.result
        users = uses.get(v.id, [])
        if not users or any(not _reads_elements(u, pos) or blk is not block_of[v.id] for u, pos, blk in users):
            continue
        if op.name in _FREE or (len(users) == 1 and _same_count(users[0][0], v)):
            inlined.add(v.id)
    return inlined


def _reads_elements(user, pos):
    """Whether `user` reads its operand `pos` element by element (through `element`)."""
    if user.name in ELEMENTWISE:
        return True
    return (user.name, pos) in (("store", len(user.operands) - 1), ("reduce", 0))


def _same_count(user, v):
    """A broadcast consumer would compute v once per output element, not once per element of v."""
    return user.name != "broadcast" or tuple(user.result.type.shape) == tuple(v.type.shape)


def needs_multi(g, v):
    """Whether computing an element of v needs its multi-index (a broadcast is inlined below it)."""
    return v.id in g.inlined and _needs_multi_op(g, v.op)


def _needs_multi_op(g, op):
    widens = op.name == "broadcast" and tuple(op.result.type.shape) != tuple(op.operands[0].type.shape)
    return widens or any(needs_multi(g, x) for x in op.operands)


def element(g, v, at):
    """The register value of v's element at `at`."""
    if v.id not in g.inlined:
        return g.ld(g.buf(v), at.flat)
    return compute(g, v.op, at)


def compute(g, op, at):
    b = g.b
    name = op.name
    if name == "constant":
        dt = op.attrs["dtype"]
        return const(dt, host_value(op.attrs["value"], dt))
    if name == "broadcast":
        (x,) = op.operands
        src_shape = x.type.shape
        if tuple(src_shape) == tuple(op.result.type.shape):
            return element(g, x, at)
        multi = [I64(0) if n == 1 else i for i, n in zip(at.multi, src_shape)]
        return element(g, x, At(g.flat(multi, src_shape), multi))
    args = [element(g, x, at) for x in op.operands]
    dt = op.operands[0].type.dtype
    if name == "unary":
        return E.unary(b, op.attrs["fn"], args[0], dt)
    if name == "binary":
        return E.binary(b, op.attrs["fn"], args[0], args[1], dt)
    if name == "where":
        return b.select(*args)
    if name == "cast":
        return cast(b, args[0], dt, op.attrs["dtype"])
    if name == "bitcast":
        return bitcast(b, args[0], dt, op.attrs["dtype"])
    raise AssertionError(f"not element-wise: {name}")


def lower(g, op):
    """An element-wise op: nothing to emit when inlined, else one loop that fills its buffer (a flat
    loop, which vectorises, unless a broadcast below needs multi-indices)."""
    v = op.result
    if v.id in g.inlined:
        return
    out = g.result(v)
    if _needs_multi_op(g, op):
        with g.nest(out.shape) as e:
            at = At(g.flat(e, out.shape), e)
            g.st(out, at.flat, compute(g, op, at))
    else:
        with g.loop(out.size) as i:
            g.st(out, i, compute(g, op, At(i)))
