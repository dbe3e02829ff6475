"""Readable text form of Tile IR (what `tw.compile(...).ir` shows)."""
from __future__ import annotations

from .core import Block, Function
from .dtypes import DType


def _attr(v):
    if isinstance(v, DType):
        return v.name
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


class _Printer:
    def __init__(self):
        self.names, self.lines = {}, []

    def name(self, v):
        if v.id not in self.names:
            base = v.name or str(len(self.names))
            self.names[v.id] = base if base not in self.names.values() else f"{base}.{len(self.names)}"
        return "%" + self.names[v.id]

    def block(self, block: Block, indent):
        pad = "  " * indent
        for op in block.ops:
            lhs = ", ".join(self.name(r) for r in op.results)
            lhs = lhs + " = " if lhs else ""
            args = ", ".join(self.name(o) for o in op.operands)
            attrs = " {" + ", ".join(f"{k}={_attr(v)}" for k, v in op.attrs.items()) + "}" if op.attrs else ""
            types = " : " + ", ".join(str(r.type) for r in op.results) if op.results else ""
            self.lines.append(f"{pad}{lhs}{op.name}{' ' + args if args else ''}{attrs}{types}")
            for i, region in enumerate(op.regions):
                params = ", ".join(f"{self.name(a)}: {a.type}" for a in region.args)
                label = {"for": ["body"], "while": ["cond", "body"], "if": ["then", "else"]}[op.name][i]
                self.lines.append(f"{pad}  ^{label}({params}):")
                self.block(region, indent + 2)


def print_function(fn: Function) -> str:
    p = _Printer()
    params = ", ".join(f"{p.name(a)}: {a.type}" for a in fn.params)
    p.lines.append(f"func @{fn.name}({params}) {{")
    p.block(fn.body, 1)
    p.lines.append("}")
    return "\n".join(p.lines)
