"""Checks that a function is well formed: types follow each op's rule, values are defined before use,
and structured control flow carries consistent types."""
from __future__ import annotations

from .core import Block, Function
from .ops import IRTypeError, check, infer
from .types import TileType


def _scalar(v, kind):
    return isinstance(v.type, TileType) and v.type.is_scalar and getattr(v.type.dtype, kind)


def _types(vals):
    return [v.type for v in vals]


def _yielded(block: Block):
    check(block.ops and block.ops[-1].name == "yield", "region must end with yield")
    return block.ops[-1].operands


def _verify_block(block: Block, visible: set):
    visible = visible | {a.id for a in block.args}
    for op in block.ops:
        for v in op.operands:
            check(v.id in visible, f"{op.name}: operand %{v.id} used before definition")
        if op.name == "for":
            lb, ub, step, *inits = op.operands
            check(all(_scalar(v, "is_int") for v in (lb, ub, step)), "for: bounds must be int scalars")
            (body,) = op.regions
            check(_types(body.args) == [lb.type] + _types(inits), "for: body arguments")
            check(_types(_yielded(body)) == _types(inits) == _types(op.results), "for: carried types")
        elif op.name == "while":
            cond, body = op.regions
            carried = _types(op.operands)
            check(_types(cond.args) == carried == _types(body.args) == _types(op.results), "while: carried types")
            (c,) = _yielded(cond)
            check(_scalar(c, "is_bool"), "while: condition must be a bool scalar")
            check(_types(_yielded(body)) == carried, "while: body must yield the carried types")
        elif op.name == "if":
            (c,) = op.operands
            check(_scalar(c, "is_bool"), "if: condition must be a bool scalar")
            for region in op.regions:
                check(_types(_yielded(region)) == _types(op.results), "if: branches must yield the result types")
        else:
            check(not op.regions, f"{op.name} cannot have regions")
            check(infer(op.name, _types(op.operands), op.attrs) == _types(op.results),
                  f"{op.name}: result types do not follow its rule")
        for region in op.regions:
            _verify_block(region, visible)
        visible |= {r.id for r in op.results}


def verify(fn: Function):
    """Raise IRTypeError naming the first malformed op."""
    check(fn.body.ops and fn.body.ops[-1].name == "return", "function must end with return")
    try:
        _verify_block(fn.body, set())
    except IRTypeError as e:
        raise IRTypeError(f"in @{fn.name}: {e}") from None
