"""Integer intervals of a kernel's scalar values, for the analyzer: which tile indices a load can take,
so that a loop over `range(n // T)` is known to read whole tiles only.

What is known: constants, runtime scalars and array extents where the caller passed them, loop
variables (from their bounds), and +, -, *, //, %, min, max, casts of those. The rest (block ids,
loaded values, carried values) is bounded below by what is certain, if anything, and not above."""
from __future__ import annotations

from .types import TileType

UNKNOWN = (None, None)


def _add(a, b):
    return None if a is None or b is None else a + b


def _binary(fn, x, y):
    (a, b), (c, d) = x, y
    if fn == "add":
        return _add(a, c), _add(b, d)
    if fn == "sub":
        return _add(a, None if d is None else -d), _add(b, None if c is None else -c)
    if fn in ("mul", "floordiv") and None not in (a, b, c, d):
        if fn == "floordiv" and c <= 0 <= d:
            return UNKNOWN
        op = (lambda p, q: p * q) if fn == "mul" else (lambda p, q: p // q)
        ends = [op(p, q) for p in (a, b) for q in (c, d)]
        return min(ends), max(ends)
    if fn == "mul" and a is not None and c is not None and a >= 0 and c >= 0:  # one side unbounded above
        return a * c, (None if b is None or d is None else b * d)
    if fn == "floordiv" and a is not None and c is not None and a >= 0 and c >= 1:
        return (0 if d is None else a // d), (None if b is None else b // c)
    if fn == "mod" and a is not None and a >= 0 and c is not None and c == d and c > 0:
        return 0, c - 1
    if fn == "minimum":
        return (None if a is None or c is None else min(a, c)), (d if b is None else b if d is None else min(b, d))
    if fn == "maximum":
        return (c if a is None else a if c is None else max(a, c)), (None if b is None or d is None else max(b, d))
    return UNKNOWN


class Ranges:
    """`interval(value)` -> (lo, hi), inclusive, None for unbounded. `scalars` gives the values of the
    runtime scalar parameters the caller knows (by parameter index); `extent(array, axis)` an int where
    an array's extent is known."""

    def __init__(self, fn, scalars, extent):
        self.known = {}
        for i, p in enumerate(fn.params):
            v = scalars.get(i)
            if isinstance(v, int) and isinstance(p.type, TileType):
                self.known[p.id] = (v, v)
        self.extent = extent
        self._walk(fn.body)

    def interval(self, v):
        return self.known.get(v.id, UNKNOWN)

    def _walk(self, block):
        for op in block.ops:
            if op.name == "for":
                lb, ub, step = (self.interval(v) for v in op.operands[:3])
                if step[0] is not None and step[0] >= 1:
                    self.known[op.regions[0].args[0].id] = (lb[0], None if ub[1] is None else ub[1] - 1)
            else:
                r = self._op(op)
                if r is not None and r != UNKNOWN:
                    self.known[op.results[0].id] = r
            for region in op.regions:
                self._walk(region)

    def _op(self, op):
        if not op.results or not isinstance(op.results[0].type, TileType) or not op.results[0].type.is_scalar:
            return None
        if not op.results[0].type.dtype.is_int:
            return None
        name = op.name
        if name == "constant":
            return (int(op.attrs["value"]),) * 2
        if name == "bid":
            return 0, None
        if name == "num_blocks":
            return 1, None
        if name == "array_dim":
            e = self.extent(op.operands[0], op.attrs["axis"])
            return (e, e) if isinstance(e, int) else (0, None)
        if name == "cast":
            return self.interval(op.operands[0])
        if name == "binary":
            return _binary(op.attrs["fn"], *(self.interval(v) for v in op.operands))
        return None
