"""Shared-memory layout of a kernel: every tile value gets a byte range of one static `__shared__`
arena, and ranges are reused once a value is dead.

Liveness works on a pre-order numbering of ops. A value used inside a loop but defined outside it
stays live to the end of that loop (the next iteration reads it again). The results of a for/while/if
and the matching region arguments share one "slot" (the carried value's storage), live across the
whole op. Intervals are inclusive, so an op's result never shares storage with its operands: every op
may read all operands while writing its result."""
from __future__ import annotations

import math

from ...ir.types import TileType

ALIGN = 16
LOOPS = ("for", "while")

# Bytes of shared memory a CTA may declare statically on every architecture; above it the kernel takes
# dynamic shared memory, which each architecture allows up to its own opt-in limit (SHARED_LIMITS).
STATIC_SHARED_LIMIT = 48 * 1024
# The opt-in maximum per CTA by compute capability (CUDA C++ Programming Guide, technical specifications).
SHARED_LIMITS = {70: 96 << 10, 72: 96 << 10, 75: 64 << 10, 80: 163 << 10, 86: 99 << 10, 87: 163 << 10,
                 89: 99 << 10, 90: 227 << 10, 100: 227 << 10, 101: 227 << 10, 103: 227 << 10, 110: 227 << 10,
                 120: 99 << 10, 121: 99 << 10}


def shared_limit(arch):
    """The most shared memory a CTA may use on `arch` ("sm_90", "sm_90a"): the table's entry, or for an
    architecture it does not know, that of the nearest older one it does."""
    cc = int("".join(ch for ch in arch[3:] if ch.isdigit()))
    known = [k for k in SHARED_LIMITS if k <= cc]
    return SHARED_LIMITS[max(known)] if known else STATIC_SHARED_LIMIT


def is_tile(v):
    return isinstance(v.type, TileType) and v.type.ndim >= 1


def nbytes(t: TileType):
    return max(1, math.prod(t.shape)) * t.dtype.itemsize


def carried_args(op, i):
    """The region arguments that are the i-th carried value of a region op."""
    if op.name == "for":
        return [op.regions[0].args[i + 1]]
    if op.name == "while":
        return [op.regions[0].args[i], op.regions[1].args[i]]
    return []


class Storage:
    """`offset[value id]` for every value that lives in shared memory; `total` bytes in all.
    `staged(op)` says which other ops need a buffer for the duration of the op: True for one element
    of their result (a scalar handed from one thread to all), or a number of bytes of scratch."""

    def __init__(self, fn, staged=lambda op: False, inline=None, pinned=None):
        self.inline = inline or {}  # fused values (fusion.py): no storage; their operands live to the use
        # {value id: for op}: a tile loaded twice over (double buffering, pipeline.py) in the value's own
        # storage and in ("next", id), both live for the whole loop.
        self.pinned = pinned or {}
        self.pos, self.end, self.defined, self.uses = {}, {}, {}, []
        self.staged_ops, self.ops = [], []
        self._staged = staged
        self._number(fn.body, [])
        self.offset, self.total = {}, 0
        self._allocate(self._intervals())

    def _number(self, block, loops):
        for a in block.args:
            self.defined.setdefault(a.id, -1)
        for op in block.ops:
            p = self.pos[id(op)] = len(self.pos)
            self.ops.append(op)
            for r in op.results:
                self.defined[r.id] = p
            for region in op.regions:
                for a in region.args:
                    self.defined[a.id] = p
            for v in op.operands:
                self.uses.append((v, p, loops))
            if self._staged(op):
                self.staged_ops.append(op)
            for region in op.regions:
                self._number(region, loops + [op] if op.name in LOOPS else loops)
            self.end[id(op)] = len(self.pos) - 1

    def _last_uses(self):
        last = dict(self.defined)
        uses, seen = list(self.uses), 0
        while seen < len(uses):  # a use of a fused value reads its defining op's operands there
            v, p, loops = uses[seen]
            seen += 1
            if v.id in self.inline:
                uses.extend((w, p, loops) for w in self.inline[v.id].operands)
        for v, p, loops in uses:
            d = self.defined[v.id]
            for loop in loops:  # outermost first: the first loop that v comes from outside of decides
                if d < self.pos[id(loop)]:
                    p = max(p, self.end[id(loop)])
                    break
            last[v.id] = max(last[v.id], p)
        return last

    def _intervals(self):
        """(start, end, bytes, [value ids]) for each storage that needs shared memory."""
        last = self._last_uses()
        out, seen = [], set()
        for op in self.ops:
            start = self.pos[id(op)]
            if op.regions:
                for i, r in enumerate(op.results):
                    if not is_tile(r):
                        continue
                    members = [r] + carried_args(op, i)
                    stop = max([self.end[id(op)]] + [last[m.id] for m in members])
                    out.append((start, stop, nbytes(r.type), [m.id for m in members]))
                    seen.update(m.id for m in members)
                continue
            for r in op.results:
                if r.id in self.pinned:
                    loop = self.pinned[r.id]
                    span = (self.pos[id(loop)], max(self.end[id(loop)], last[r.id]), nbytes(r.type))
                    out += [(*span, [r.id]), (*span, [("next", r.id)])]
                elif is_tile(r) and r.id not in seen and r.id not in self.inline:
                    out.append((start, last[r.id], nbytes(r.type), [r.id]))
            if op in self.staged_ops:
                size = self._staged(op)
                size = nbytes(op.results[0].type) if size is True else size
                out.append((start, start, size, [("staged", op.results[0].id)]))
        return out

    def _allocate(self, intervals):
        placed = []  # (start, end, offset, size)
        for start, stop, size, ids in sorted(intervals, key=lambda t: (t[0], -t[2])):
            busy = sorted((o, o + s) for a, b, o, s in placed if a <= stop and start <= b)
            off = 0
            for lo, hi in busy:
                if off + size <= lo:
                    break
                off = max(off, -(-hi // ALIGN) * ALIGN)
            placed.append((start, stop, off, size))
            for i in ids:
                self.offset[i] = off
            self.total = max(self.total, off + size)
