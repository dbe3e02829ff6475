"""Streaming stores: a tile store into an array too large for the caches writes with non-temporal
stores, which skip reading each destination line into the cache first (the read-for-ownership).

For vector add that is a quarter of the memory traffic: measured with 2 threads over 2^24 float32 on
the 2-core machine, aligned non-temporal stores ran 1.34-1.44x faster than plain ones. LLVM's
vectoriser will not emit them (a non-temporal vector store must be aligned to its width, which it
cannot know), so a store that streams computes each row of the tile in chunks into a small stack buffer
(the ordinary, vectorised element loop) and copies each chunk out with `tw_stream_copy`: bytes up to
the first aligned address, aligned non-temporal vectors, bytes after. The block runner ends with an
`sfence`, so every streamed store is visible before the launch returns.

Applies on x86-64, in kernels without reductions, scans or matmuls (`kernel_may_stream`), to stores
whose tile rows are at least MIN_ROW_BYTES, when at run time the array's innermost walked stride is 1
and the whole array is at least STREAM_BYTES; every other store, and the checked (partial-tile) path,
stores as before."""
from __future__ import annotations

from llvmlite import ir

from .elements import I64, PTR, mem_type, to_mem
from .loading import last_level_cache_bytes

# Arrays this large stream: three quarters of the last-level cache (24 MiB of the measured machine's 32).
STREAM_BYTES = 3 * (last_level_cache_bytes() or 32 << 20) // 4
MIN_ROW_BYTES = 256
CHUNK_BYTES = 2048          # the stack buffer a row is computed into, a chunk at a time
LINE_BYTES = 64             # a cache line: the unit streaming stores write whole
COPY_FN = "tw_stream_copy"
CHUNK_NAME = "stream.chunk"  # the chunk buffers' name in the IR
_COMPUTE = ("reduce", "scan", "matmul")


def kernel_may_stream(fn, triple):
    """Only kernels that map elements (no reduction, scan or matmul) get streaming variants: they are
    bound by memory traffic, while those with reductions ran at 15-36% of the bandwidth, and the variant
    added a fifth to softmax's compile time. x86-64 only (`sfence`, `movnt`)."""
    return triple.startswith("x86_64") and not any(op.name in _COMPUTE for op in fn.walk())


def applies(g, arr, shape):
    """Whether this store gets a streaming variant (decided when the kernel is generated). Not in the
    copy of a loop that reads fused loads with bounds checks (fusion.versioned): only edge blocks take
    it, and leaving it out there halves the extra code."""
    return g.streaming_ok and not g.checked_loads and shape[-1] * arr.dt.itemsize >= MIN_ROW_BYTES


def worth_it(g, arr, extents, strides):
    """The run-time test: a contiguous innermost walk over an array of at least STREAM_BYTES."""
    b = g.b
    total = I64(arr.dt.itemsize)
    for n in extents:
        total = b.mul(total, n)
    return b.and_(b.icmp_signed("==", strides[-1], I64(1)), b.icmp_signed(">=", total, I64(STREAM_BYTES)))


def store(g, arr, tile, shape, row_ptr):
    """Store `tile` (static `shape`, every element inside the array) a row chunk at a time; `row_ptr(e)`
    is the address of the element at tile coordinates `e`."""
    b, t = g.b, mem_type(arr.dt)
    size = arr.dt.itemsize  # bool is stored as one byte, like NumPy's
    length = shape[-1]
    chunk = max(1, min(length, CHUNK_BYTES // size))
    buf = g.slot(ir.ArrayType(t, chunk), chunk * size + LINE_BYTES, LINE_BYTES, name=CHUNK_NAME)
    copy = _copy_fn(g)
    g.streaming_used = True
    with g.nest(shape[:-1]) as outer:
        # Chunk boundaries fall on cache-line boundaries of the destination (all but the row's first
        # chunk start on one), so no line is written partly by plain and partly by streaming stores:
        # mixing the two on one line costs more than plain stores (measured: 0.79x against 0.94x).
        misalign = b.and_(b.sub(I64(0), b.ptrtoint(row_ptr([*outer, I64(0)]), I64)), I64(LINE_BYTES - 1))
        lead = b.udiv(misalign, I64(size))
        lead = b.select(b.icmp_signed("<", lead, I64(length)), lead, I64(length))
        chunks = b.add(I64(1), b.udiv(b.add(b.sub(I64(length), lead), I64(chunk - 1)), I64(chunk)))
        with g.loop(chunks) as k:
            first = b.icmp_signed("==", k, I64(0))
            c0 = b.select(first, I64(0), b.add(lead, b.mul(b.sub(k, I64(1)), I64(chunk))))
            c1 = b.add(lead, b.mul(k, I64(chunk)))
            c1 = b.select(b.icmp_signed("<", c1, I64(length)), c1, I64(length))
            n = b.sub(c1, c0)
            with g.loop(n) as j:
                e = [*outer, b.add(c0, j)]
                v = to_mem(b, g.element(tile, g.flat(e, shape), e), arr.dt)
                b.store(v, b.gep(buf, [j], source_etype=t, inbounds=True))
            b.call(copy, [row_ptr([*outer, c0]), buf, b.mul(n, I64(size))])


def _copy_fn(g):
    """`tw_stream_copy(dst, src, nbytes)`, emitted once per module."""
    m = g.module
    if COPY_FN in m.globals:
        return m.globals[COPY_FN]
    f = ir.Function(m, ir.FunctionType(ir.VoidType(), [PTR, PTR, I64]), COPY_FN)
    f.linkage = "internal"
    f.attributes.add("noinline")  # one copy in the object, however many stores stream: less to compile
    dst, src, n = f.args
    for a in (dst, src):
        a.add_attribute("noalias")
    b = ir.IRBuilder(f.append_basic_block("entry"))
    memcpy = m.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    head = b.and_(b.sub(I64(0), b.ptrtoint(dst, I64)), I64(LINE_BYTES - 1))
    head = b.select(b.icmp_unsigned("<", head, n), head, n)
    with b.if_then(b.icmp_unsigned("!=", head, I64(0))):
        b.call(memcpy, [dst, src, head, ir.Constant(ir.IntType(1), 0)])
    body = b.and_(b.sub(n, head), I64(-LINE_BYTES))
    vec = ir.VectorType(ir.IntType(8), LINE_BYTES)
    nontemporal = m.add_metadata([ir.Constant(ir.IntType(32), 1)])
    pre, loop, done = b.block, f.append_basic_block("loop"), f.append_basic_block("done")
    b.cbranch(b.icmp_unsigned("<", I64(0), body), loop, done)
    b.position_at_end(loop)
    i = b.phi(I64)
    i.add_incoming(I64(0), pre)
    at = b.add(head, i)
    v = b.load(b.gep(src, [at], source_etype=ir.IntType(8)), typ=vec)
    v.align = 1
    s = b.store(v, b.gep(dst, [at], source_etype=ir.IntType(8)))
    s.align = LINE_BYTES
    s.set_metadata("nontemporal", nontemporal)
    nxt = b.add(i, I64(LINE_BYTES))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_unsigned("<", nxt, body), loop, done)
    b.position_at_end(done)
    end = b.add(head, body)
    with b.if_then(b.icmp_unsigned("<", end, n)):
        b.call(memcpy, [b.gep(dst, [end], source_etype=ir.IntType(8)), b.gep(src, [end], source_etype=ir.IntType(8)),
                        b.sub(n, end), ir.Constant(ir.IntType(1), 0)])
    b.ret_void()
    return f


def fence(g, b):
    """An `sfence` in the block runner when any store streamed: streamed stores are weakly ordered."""
    if g.streaming_used:
        b.call(ir.Function(g.module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse.sfence"), [])
