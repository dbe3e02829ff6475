"""SSA values, operations, blocks and functions: the containers every pass and backend walks."""
from __future__ import annotations

import itertools

_ids = itertools.count()


class Value:
    __slots__ = ("type", "op", "index", "id", "name")

    def __init__(self, type, op=None, index=0, name=None):
        self.type, self.op, self.index, self.name = type, op, index, name
        self.id = next(_ids)

    def __repr__(self):
        return f"%{self.name or self.id}: {self.type}"


class Block:
    """A straight-line list of ops with block arguments; the last op of a region's block is `yield`."""

    def __init__(self, arg_types=(), arg_names=()):
        names = list(arg_names) + [None] * (len(arg_types) - len(arg_names))
        self.args = [Value(t, None, i, n) for i, (t, n) in enumerate(zip(arg_types, names))]
        self.ops: list[Op] = []

    def walk(self):
        """Every op in this block and, depth first, in its regions."""
        for op in self.ops:
            yield op
            for region in op.regions:
                yield from region.walk()


class Op:
    __slots__ = ("name", "operands", "attrs", "results", "regions", "loc")

    def __init__(self, name, operands, attrs, result_types, regions=(), loc=None):
        self.name, self.operands, self.attrs = name, list(operands), dict(attrs)
        self.results = [Value(t, self, i) for i, t in enumerate(result_types)]
        self.regions, self.loc = list(regions), loc

    @property
    def result(self):
        (r,) = self.results
        return r

    def __repr__(self):
        return f"Op({self.name}, {self.attrs})"


class Function:
    """A kernel after specialisation: typed parameters and a body block ending in `return`."""

    def __init__(self, name, params, param_names, body: Block | None = None, meta=None):
        self.name = name
        self.body = body or Block(params, param_names)
        self.meta = meta or {}

    @property
    def params(self):
        return self.body.args

    def walk(self):
        return self.body.walk()

    def written_params(self):
        """Indices of the array parameters that a store, scatter or atomic may write (computed once:
        every launch checks them, and a function is not changed once it is compiled)."""
        written = self.__dict__.get("_written")
        if written is None:
            pos = {p.id: i for i, p in enumerate(self.params)}
            written = self._written = tuple(sorted({pos[op.operands[0].id] for op in self.walk() if op.name in
                                                    ("store", "scatter", "atomic") and op.operands[0].id in pos}))
        return written
