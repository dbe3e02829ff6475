"""cp.async double buffering of tile loads in `for` loops (the K loop of a matmul): while the CTA computes
on iteration k's tiles, the copies of iteration k+1's tiles are already in flight. A mixin of
codegen.KernelGen, called by control.op_for and memory.op_load.

A load takes part when it sits directly in the loop body, reads an array with indices that are pure
scalar expressions of the loop variable and of values from outside the loop (not of carried values),
and the loop writes no global memory (a store could change what the early copy should have read).
Its tile gets two shared-memory buffers for the whole loop (storage.Storage `pinned`): iteration k reads
buffer k % 2. Before the loop the copies of iteration 0 go out; at the top of iteration k those of
iteration k+1 (the index expressions evaluated again for the next loop value), then wait_group 1 (all
but the newest group landed: iteration k's tiles; wait_group 0 in the last iteration) and a barrier.
Buffer (k+1) % 2 was last read in iteration k-1, and every op that reads a tile ends with a barrier."""
from __future__ import annotations

from .storage import is_tile

PURE = {"constant", "binary", "unary", "cast", "bitcast", "where", "bid", "num_blocks", "array_dim"}
WRITES = {"store", "scatter", "atomic"}


def _index_chain(load, body, iv):
    """The body's ops that compute the load's indices, in order, or None where the load cannot be
    issued an iteration early (an index reads a carried value or an op that is not pure) or does not
    depend on the loop variable at all."""
    defs = {r.id: op for op in body.ops for r in op.results}
    inner = {a.id for a in body.args}
    need, uses_iv, stack = set(), False, list(load.operands[1:])
    if load.operands[0].id in defs or load.operands[0].id in inner:
        return None
    while stack:
        v = stack.pop()
        if v.id == iv.id:
            uses_iv = True
        elif v.id in inner:
            return None
        elif v.id in defs:
            op = defs[v.id]
            if op.name not in PURE or is_tile(v):
                return None
            if id(op) not in need:
                need.add(id(op))
                stack.extend(op.operands)
    if not uses_iv:
        return None
    return [op for op in body.ops if id(op) in need]


def pipelined_loads(fn):
    """{id(load op): (for op, index chain)} of every load to double-buffer, and {tile id: for op}."""
    loads, pinned = {}, {}
    for loop in fn.walk():
        if loop.name != "for" or any(op.name in WRITES for op in loop.regions[0].walk()):
            continue
        body = loop.regions[0]
        for op in body.ops:
            if op.name == "load" and is_tile(op.result):
                chain = _index_chain(op, body, body.args[0])
                if chain is not None:
                    loads[id(op)] = (loop, chain)
                    pinned[op.result.id] = loop
    return loads, pinned


class Pipeline:
    def buffer(self, v, which):
        """Tile v's buffer `which` (a C++ expression: 0 or 1) of a double-buffered load."""
        ct, off = self.ct(v), self.storage.offset
        return f"(({ct}*)(tw_smem + (({which}) ? {off[('next', v.id)]} : {off[v.id]})))"

    def prefetches(self, loop):
        return [op for op in loop.regions[0].ops if self.pipelined.get(id(op), (None,))[0] is loop]

    def issue(self, loop, loads, iv_value, which):
        """Copies of `loads` for the loop variable's value `iv_value` into buffers `which`, one group."""
        iv = loop.regions[0].args[0]
        saved = dict(self.names)
        ivn = self.fresh("ivn")
        self.line(f"const {self.ct(iv)} {ivn} = ({self.ct(iv)})({iv_value});")
        self.names[iv.id] = ivn
        done = set()
        for load in loads:
            for op in self.pipelined[id(load)][1]:
                if id(op) not in done:  # evaluated afresh under new names in this C++ scope
                    done.add(id(op))
                    for r in op.results:
                        self.names.pop(r.id, None)
                    getattr(self, "op_" + op.name)(op)
            self.load_copies(load, self.buffer(load.result, which))
        self.line("tw_cp_async_commit();")
        self.names = saved

    def pipeline_prologue(self, loop, n, lo):
        loads = self.prefetches(loop)
        if loads:
            self.line(f"if ({n} > 0) {{")
            self.depth += 1
            self.issue(loop, loads, lo, "0")
            self.depth -= 1
            self.line("}")
        return loads

    def pipeline_step(self, loop, loads, k, n, lo, st):
        """At the top of iteration k: send iteration k+1's copies, wait for iteration k's."""
        self.line(f"if ({k} + 1 < {n}) {{")
        self.depth += 1
        self.issue(loop, loads, f"{lo} + ({k} + 1) * {st}", f"({k} + 1) & 1")
        self.line("tw_cp_async_wait<1>();")
        self.depth -= 1
        self.line("} else {")
        self.line("  tw_cp_async_wait<0>();")
        self.line("}")
        self.line("tw_sync();")
