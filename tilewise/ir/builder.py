"""Appends typed ops to a block; the one way the front end (and passes) create IR."""
from __future__ import annotations

from contextlib import contextmanager

from .core import Block, Op, Value
from .ops import infer


class Builder:
    def __init__(self, block: Block):
        self.block = block
        self.loc = None  # (file, line, col) of the source being lowered, attached to each op

    def emit(self, name, operands=(), **attrs) -> list[Value]:
        types = infer(name, [v.type for v in operands], attrs)
        op = Op(name, operands, attrs, types, loc=self.loc)
        self.block.ops.append(op)
        return op.results

    def one(self, name, operands=(), **attrs) -> Value:
        (r,) = self.emit(name, operands, **attrs)
        return r

    def region_op(self, name, operands, result_types, regions, **attrs) -> Op:
        op = Op(name, operands, attrs, result_types, regions, loc=self.loc)
        self.block.ops.append(op)
        return op

    @contextmanager
    def at(self, block: Block):
        saved, self.block = self.block, block
        try:
            yield block
        finally:
            self.block = saved
