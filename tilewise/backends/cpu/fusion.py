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
# The deepest chain of inlined ops computed in one loop; the op past it gets a buffer and starts a new
# chain (see _cut_deep_chains).
MAX_DEPTH = 256


class At:
    __slots__ = ("flat", "multi")

    def __init__(self, flat, multi=None):
        self.flat, self.multi = flat, multi


def plan(fn):
    """Ids of the values to inline (see the module docstring), and of those cut out of deep chains."""
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
        """The ops that really read v's elements: its users, or, for inlined users, their readers
        (a worklist: a chain of inlined users may be thousands of ops long)."""
        out, todo = [], [v]
        while todo:
            for u, _, _ in uses[todo.pop().id]:
                if u.results and u.result.id in inlined:
                    todo.append(u.result)
                else:
                    out.append(u)
        return out
    for op in loads:
        # Read where the readers are: the array must not be written in between, and a reader that is a
        # store must not write the array it reads (element by element, a later read would see an earlier
        # write; whole-tile semantics reads everything first).
        ends = readers(op.result)
        count = writes[id(block_of[op.result.id])]
        last = max(position[id(u)] for u in ends)
        if count[last] == count[position[id(op)] + 1] and \
                not any(u.name == "store" and u.operands[0] is op.operands[0] for u in ends):
            inlined.add(op.result.id)
    return inlined, _cut_deep_chains(fn, inlined)


def _cut_deep_chains(fn, inlined):
    """Take the op past every MAX_DEPTH inlined ops of a chain out of `inlined` (it gets a buffer and a
    loop, like an op with two uses), and return those ops' ids. LLVM's optimiser slows down more than
    linearly with the size of one loop body: a 4096-op chain of adds fused into one loop (two, with
    the inlined load's checked copy) took 7-10 s to compile, cut into loops of 256 ops about 1 s.
    Chains this deep come only from unrolled loops and generated code; shorter ones compile as
    before. (Cutting more often does not help chains of mathlib functions, which are tens of
    instructions each: compile time then grows with the size of the whole function.)"""
    depth, cuts = {}, set()
    for op in fn.walk():  # definitions come before uses, and an inlined value is used in its own block
        for v in op.results:
            if v.id in inlined:
                d = 1 + max((depth.get(x.id, 0) for x in op.operands), default=0)
                if d > MAX_DEPTH:
                    inlined.discard(v.id)
                    cuts.add(v.id)
                else:
                    depth[v.id] = d
    return cuts


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
    """Memoised in `g.multi` and walked with a worklist: a fused chain may be thousands of ops deep."""
    memo, todo = g.multi, [op]
    while todo:
        o = todo[-1]
        if id(o) in memo:
            todo.pop()
            continue
        if o.name == "load":
            memo[id(o)] = len(o.attrs["shape"]) > 1
        elif o.name == "broadcast" and tuple(o.result.type.shape) != tuple(o.operands[0].type.shape):
            memo[id(o)] = True
        else:
            below = [x.op for x in o.operands if x.id in g.inlined]
            pending = [b for b in below if id(b) not in memo]
            if pending:
                todo.extend(pending)
                continue
            memo[id(o)] = any(memo[id(b)] for b in below)
        todo.pop()
    return memo[id(op)]


def element(g, v, at):
    """The register value of v's element at `at`."""
    if v.id not in g.inlined:
        return g.ld(g.buf(v), at.flat)
    return compute(g, v.op, at)


def compute(g, op, at):
    """The register value of op's result at `at`, its inlined operands computed in place. An explicit
    stack instead of recursion (a chain of inlined ops may be thousands deep); operands are still
    computed first to last, each completely before the next, so the instructions come out in the same
    order as a recursive walk would emit them."""
    done, todo = [], []
    _expand(g, op, at, todo, done)
    while todo:
        v, at, op = todo.pop()
        if op is not None:  # its operands' values are the last len(operands) entries of `done`
            n = len(op.operands)
            args = done[len(done) - n:]
            del done[len(done) - n:]
            done.append(_combine(g, op, args))
        elif v.id not in g.inlined:
            done.append(g.ld(g.buf(v), at.flat))
        else:
            _expand(g, v.op, at, todo, done)
    (result,) = done
    return result


def _expand(g, op, at, todo, done):
    """One step of `compute`: a leaf's value goes onto `done`; an index remap pushes its operand at the
    remapped position (its value is the remap's); any other op pushes itself, then its operands."""
    name = op.name
    if name == "load":
        done.append(_load_element(g, op, at))
    elif name == "arange":  # 1-D: the element's offset is its value
        done.append(cast(g.b, at.flat, D.int64, op.result.type.dtype))
    elif name == "constant":
        dt = op.attrs["dtype"]
        done.append(const(dt, host_value(op.attrs["value"], dt)))
    elif name == "reshape":  # unit_reshape: same row-major offset; the multi-index loses or gains zeros
        (x,) = op.operands
        if at.multi is not None:
            kept = iter(i for i, n in zip(at.multi, op.result.type.shape) if n != 1)
            at = At(at.flat, [I64(0) if n == 1 else next(kept) for n in x.type.shape])
        todo.append((x, at, None))
    elif name == "broadcast":
        (x,) = op.operands
        src_shape = x.type.shape
        if tuple(src_shape) != tuple(op.result.type.shape):
            multi = [I64(0) if n == 1 else i for i, n in zip(at.multi, src_shape)]
            at = At(g.flat(multi, src_shape), multi)
        todo.append((x, at, None))
    else:
        todo.append((None, None, op))
        todo.extend((x, at, None) for x in reversed(op.operands))


def _combine(g, op, args):
    b = g.b
    name = op.name
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
    if v.id in g.cuts:  # a 4096-op chain would otherwise take 16 buffers where two do
        pool = g.cut_buffers.setdefault(v.type, [])
        out = g.values[v.id] = pool.pop() if pool else g.new_buf(v.type)
    else:
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
    _release_cuts(g, op)


def _release_cuts(g, op):
    """Give back the buffers of the chain cuts that op's loop has just read: such a value has one reader
    (it would be inlined otherwise), so it is dead now. Not where an inlined index remap or constant,
    which may have several readers, stands between (`shared`), and not a remap's own buffer."""
    todo = [(x, False) for x in op.operands]
    while todo:
        v, shared = todo.pop()
        free = v.op is not None and (v.op.name in _FREE or unit_reshape(v.op))
        if v.id in g.inlined:
            todo.extend((x, shared or free) for x in v.op.operands)
        elif v.id in g.cuts and not (shared or free):
            g.cut_buffers[v.type].append(g.values[v.id])


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
    todo = [v]
    while todo:  # a worklist, in the order a recursive walk would find them
        v = todo.pop()
        if v.id in g.inlined:
            if v.op.name == "load":
                out.append(g.fused_loads[v.id])
            todo.extend(reversed(v.op.operands))
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
