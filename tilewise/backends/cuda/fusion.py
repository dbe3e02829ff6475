"""Which tiles never reach shared memory: an elementwise (or pure gather) op whose result has exactly
one use, by an op in the same block that reads each element once, becomes an expression inside that
op's loop instead of a tile of its own (one loop, one barrier and a shared-memory round trip fewer).
Chains fuse transitively: `y = exp(x - m) * w` is one loop that reads x, m and w and writes y.

Same block only: no yield runs between the definition and the use, so the operands the expression
reads (tiles in shared memory, registers) still hold the same values when the use evaluates it.
storage.py keeps those operands alive up to the use."""
from __future__ import annotations

from .storage import is_tile

# Ops whose element i is a pure expression of operand elements (codegen.KernelGen.define).
DEFS = {"constant", "arange", "unary", "binary", "where", "cast", "bitcast", "broadcast", "reshape", "permute",
        "extract", "cat"}
# Ops that read each element of the operand once (through KernelGen.ref), so nothing is recomputed.
USERS = {"unary", "binary", "where", "cast", "bitcast", "reshape", "store", "reduce"}
# A tile made from registers alone (a splat of a scalar, a constant, arange) is cheap to recompute:
# it also fuses into ops that read an element several times.
CHEAP_USERS = USERS | {"broadcast", "permute", "extract", "cat"}


def inline_map(fn):
    """{value id: defining op} of every tile value to evaluate at its use instead of storing."""
    uses, user_block = {}, {}

    def count(block):
        for op in block.ops:
            for v in op.operands:
                uses.setdefault(v.id, []).append(op)
                user_block[(v.id, id(op))] = block
            for region in op.regions:
                count(region)

    count(fn.body)
    out = {}

    def scan(block):
        for op in block.ops:
            for region in op.regions:
                scan(region)
            if op.name not in DEFS or len(op.results) != 1 or not is_tile(op.results[0]):
                continue
            v = op.results[0]
            users = uses.get(v.id, [])
            ok = CHEAP_USERS if not any(is_tile(w) for w in op.operands) else USERS
            if len(users) == 1 and users[0].name in ok and user_block[(v.id, id(users[0]))] is block:
                out[v.id] = op

    scan(fn.body)
    _cut_deep_chains(fn, out)
    return out


# The deepest chain of fused ops in one expression; the op past it gets a shared-memory tile of its own
# and starts a new expression. Its C text nests a few parentheses per op, and C++ front ends (NVRTC's,
# g++) parse nesting recursively: a 4096-op expression would be slow to compile or overflow their stacks.
# Chains this deep come only from unrolled loops and generated code, so kernels with ordinary chains
# compile to the same source as before.
MAX_DEPTH = 128


def _cut_deep_chains(fn, out):
    depth = {}
    for op in fn.walk():  # definitions come before uses, and a fused value is used in its own block
        for v in op.results:
            if v.id in out:
                d = 1 + max((depth.get(x.id, 0) for x in op.operands), default=0)
                if d > MAX_DEPTH:
                    del out[v.id]
                else:
                    depth[v.id] = d
