"""Fusion of element-wise chains: which values never get a buffer, and how to compute one element.

An element-wise value (unary, binary, where, cast, bitcast, broadcast, constant, arange, and a reshape
that only adds or drops unit dimensions) is *inlined* when every use of it reads it element by element
in the same block (another element-wise op, a store, a reduction) and inlining costs no extra work: it
has one use of its own shape, or it is a constant, an arange or an index remap (broadcast, unit
reshape). An inlined value has no buffer; each consumer computes its element where it needs it, so
`store(exp(x - broadcast(max)) / broadcast(sum))` is one loop over the tile. Because uses stay in the
defining block, an inlined value's operands are still live and unchanged wherever the consumer runs (a
region's carried buffers change only at its yield, which is not a consumer).

A load is inlined on the same terms (up to `_LOAD_USES` uses, of its own shape) when no op between it
and the ops that really read it (through inlined users) may write memory, and none of those is a store
into the same array, so reading later reads the same values. Its uses then read the array directly
instead of a copy into a tile buffer made first; a consumer of inlined loads is emitted twice
(`versioned`): a fast loop when every inlined load's tile lies inside its array, and a checked one
that reads the padded tiles from buffers filled first.

`At` is the position of one element: its row-major offset and, when a broadcast or a load below needs
it, its multi-index."""
from __future__ import annotations

from ...ir import dtypes as D
from . import elementwise as E
from .elements import I1, I64, bitcast, cast, const, host_value, mem_type, to_reg

ELEMENTWISE = ("unary", "binary", "where", "cast", "bitcast", "broadcast", "constant", "arange")
_FREE = ("constant", "broadcast", "arange")  # inlined into any number of uses: no arithmetic is repeated
_WRITES = ("store", "scatter", "atomic")
# A load read by up to this many ops is read by each from the array, not copied into a buffer first:
# softmax's rows feed the max and `x - max`, a layer norm's feed the sum and `x - mean`. Each re-read
# costs what reading a buffer would (the data is as near in the cache), and the copy pass is saved.
_LOAD_USES = 2


class At:
    __slots__ = ("flat", "multi")

    def __init__(self, flat, multi=None):
        self.flat, self.multi = flat, multi


def plan(fn):
    """Ids of the values to inline (see the module docstring)."""
    uses, block_of, position, writes = {}, {}, {}, {}

    def visit(block):
        for k, op in enumerate(block.ops):
            position[id(op)] = k
            for pos, v in enumerate(op.operands):
                uses.setdefault(v.id, []).append((op, pos, block))
            for r in op.results:
                block_of[r.id] = block
            for region in op.regions:
                visit(region)
        # writes[block][k]: memory-writing ops (nested ones included) among the block's first k ops
        writes[id(block)] = [0]
        for op in block.ops:
            w = op.name in _WRITES or any(o.name in _WRITES for r in op.regions for o in r.walk())
            writes[id(block)].append(writes[id(block)][-1] + w)
    visit(fn.body)
    inlined, loads = set(), []
    for op in fn.walk():
        if not _elementwise(op) and op.name != "load":
            continue
        v = op.result
        users = uses.get(v.id, [])
        if not users or any(not _reads_elements(u, pos) or blk is not block_of[v.id] for u, pos, blk in users):
            continue
        if op.name in _FREE or unit_reshape(op):  # index remaps and constants: no arithmetic repeated
            inlined.add(v.id)
        elif op.name == "load":
            if len(users) <= _LOAD_USES and all(_same_count(u, v) for u, _, _ in users):
                loads.append(op)
        elif len(users) == 1 and _same_count(users[0][0], v):
            inlined.add(v.id)

    def readers(v):
        """The ops that really read v's elements: its users, or, for inlined users, their readers."""
        for u, _, _ in uses[v.id]:
            yield from readers(u.result) if u.results and u.result.id in inlined else (u,)
    for op in loads:
        # Read where the readers are: the array must not be written in between, and a reader that is a
        # store must not write the array it reads (element by element, a later read would see an earlier
        # write; whole-tile semantics reads everything first).
        ends = list(readers(op.result))
        count = writes[id(block_of[op.result.id])]
        last = max(position[id(u)] for u in ends)
        if count[last] == count[position[id(op)] + 1] and \
                not any(u.name == "store" and u.operands[0] is op.operands[0] for u in ends):
            inlined.add(op.result.id)
    return inlined


def _reads_elements(user, pos):
    """Whether `user` reads its operand `pos` element by element (through `element`)."""
    if _elementwise(user):
        return True
    return (user.name, pos) in (("store", len(user.operands) - 1), ("reduce", 0))


def _elementwise(op):
    return op.name in ELEMENTWISE or unit_reshape(op)


def unit_reshape(op):
    """A reshape that only adds or drops size-1 dimensions (`x[None, :]`): an index remap, like a
    broadcast, so it is inlined rather than given a buffer."""
    if op.name != "reshape":
        return False
    squeeze = lambda shape: [n for n in shape if n != 1]  # noqa: E731
    return squeeze(op.result.type.shape) == squeeze(op.operands[0].type.shape)


def _same_count(user, v):
    """A broadcast consumer would compute v once per output element, not once per element of v."""
    return user.name != "broadcast" or tuple(user.result.type.shape) == tuple(v.type.shape)


def needs_multi(g, v):
    """Whether computing an element of v needs its multi-index (a broadcast is inlined below it)."""
    return v.id in g.inlined and _needs_multi_op(g, v.op)


def _needs_multi_op(g, op):
    if op.name == "load":
        return len(op.attrs["shape"]) > 1
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
    if name == "load":
        return _load_element(g, op, at)
    if name == "reshape":  # unit_reshape: same row-major offset; the multi-index loses or gains zeros
        (x,) = op.operands
        if at.multi is None:
            return element(g, x, at)
        kept = iter(i for i, n in zip(at.multi, op.result.type.shape) if n != 1)
        return element(g, x, At(at.flat, [I64(0) if n == 1 else next(kept) for n in x.type.shape]))
    if name == "arange":  # 1-D: the element's offset is its value
        return cast(b, at.flat, D.int64, op.result.type.dtype)
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
    loop, which vectorises, unless a broadcast or load below needs multi-indices)."""
    v = op.result
    if v.id in g.inlined:
        return
    out = g.result(v)

    def fill():
        if _needs_multi_op(g, op):
            with g.nest(out.shape) as e:
                at = At(g.flat(e, out.shape), e)
                g.st(out, at.flat, compute(g, op, at))
        else:
            with g.loop(out.size) as i:
                g.st(out, i, compute(g, op, At(i)))
    versioned(g, op.operands, fill)


# ---- inlined loads -------------------------------------------------------------------------------

class FusedLoad:
    """What an inlined load computes where it stands (memory.py makes it): `element_ptr(coords)`, the
    address of the element at tile coordinates `coords`; the tile's rank; whether the whole tile is inside
    the array; its tile type; and `fill(buf)`, which copies the tile with its padding into a buffer (for
    the checked copy of its consumers; `buf` is allocated on first use)."""
    __slots__ = ("element_ptr", "rank", "inside", "type", "fill", "buf")

    def __init__(self, element_ptr, rank, inside, type_, fill):
        self.element_ptr, self.rank = element_ptr, rank
        self.inside, self.type, self.fill, self.buf = inside, type_, fill, None


def _load_element(g, op, at):
    f = g.fused_loads[op.result.id]
    multi = at.multi if at.multi is not None else [at.flat][:f.rank]
    assert g.checked_loads is not None, "an inlined load read outside `versioned`"
    if g.checked_loads:  # the tile, padded, in a buffer filled before the consumer's loop
        return g.ld(f.buf, g.flat(multi, f.type.shape))
    v = g.b.load(f.element_ptr(multi), typ=mem_type(f.type.dtype))
    return to_reg(g.b, v, f.type.dtype)


def _loads_below(g, v, out):
    if v.id in g.inlined:
        if v.op.name == "load":
            out.append(g.fused_loads[v.id])
        for x in v.op.operands:
            _loads_below(g, x, out)
    return out


def versioned(g, values, emit):
    """Emit `emit()`, which reads elements of `values`: once if no inlined load is below them, else a
    fast copy (all those loads' tiles inside their arrays) and a checked copy."""
    loads = []
    for v in values:
        _loads_below(g, v, loads)
    if not loads:
        return emit()
    inside = I1(1)
    for f in loads:
        inside = g.b.and_(inside, f.inside)
    g.if_then(inside, lambda: _with_checks(g, False, emit), lambda: _with_checks(g, True, emit, loads))


def _with_checks(g, checked, emit, loads=()):
    """The checked copy first copies each inlined load's tile, padded, into a buffer (two vectorised
    loops) and reads that: per-element bounds checks in the consumer's loop became gathers, which made
    rows whose length is not a power of two (every block partial) 1.7x slower."""
    for f in dict.fromkeys(loads):
        if f.buf is None:
            f.buf = g.new_buf(f.type)
        f.fill(f.buf)
    saved, g.checked_loads = g.checked_loads, checked
    try:
        emit()
    finally:
        g.checked_loads = saved
