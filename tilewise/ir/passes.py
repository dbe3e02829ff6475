"""Clean-up passes every backend wants: constant folding, common-subexpression elimination and
dead-code elimination. Each rewrites a Function in place and is safe to run repeatedly."""
from __future__ import annotations

import operator

import numpy as np

from .core import Block, Function

SIDE_EFFECTS = {"store", "scatter", "atomic", "printf", "assert", "yield", "return"}

_FOLD_INT = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "minimum": min,
             "maximum": max, "eq": operator.eq, "ne": operator.ne, "lt": operator.lt,
             "le": operator.le, "gt": operator.gt, "ge": operator.ge}


def _has_effects(op) -> bool:
    if op.name in SIDE_EFFECTS:
        return True
    # a region's closing yield only hands values to its op: it makes no loop or branch effectful
    return any(_has_effects(o) for r in op.regions for o in r.ops if o.name != "yield")


def _replace_uses(block: Block, mapping: dict):
    for op in block.walk():
        op.operands = [mapping.get(v.id, v) for v in op.operands]


def fold_constants(fn: Function):
    """Fold integer/bool scalar arithmetic and comparisons on constants (the cases whose semantics are
    Python's own after wrapping); float folding is left to backends so rounding stays theirs."""
    mapping = {}
    for op in list(fn.walk()):
        op.operands = [mapping.get(v.id, v) for v in op.operands]
        if op.name != "binary" or op.attrs["fn"] not in _FOLD_INT:
            continue
        x, y = op.operands
        if not all(v.op is not None and v.op.name == "constant" for v in (x, y)):
            continue
        if x.type.dtype.is_float:
            continue
        value = _FOLD_INT[op.attrs["fn"]](x.op.attrs["value"], y.op.attrs["value"])
        dt = op.result.type.dtype
        if not dt.is_bool:
            value = int(np.array(value).astype(np.int64).astype(dt.np))  # wrap like the hardware
        # Turn the op itself into a constant so its position (dominance) is unchanged.
        op.name, op.operands = "constant", []
        op.attrs = {"value": bool(value) if dt.is_bool else value, "shape": op.result.type.shape, "dtype": dt}
    return fn


def _key(op):
    attrs = tuple(sorted((k, repr(v)) for k, v in op.attrs.items()))
    return (op.name, tuple(v.id for v in op.operands), attrs)


def _cse_block(block: Block, seen: dict, mapping: dict):
    seen = dict(seen)
    kept = []
    for op in block.ops:
        op.operands = [mapping.get(v.id, v) for v in op.operands]
        for region in op.regions:
            _cse_block(region, seen, mapping)
        if not op.regions and op.name not in SIDE_EFFECTS and op.name not in ("atomic", "load", "gather"):
            k = _key(op)
            if k in seen:
                for old, new in zip(op.results, seen[k].results):
                    mapping[old.id] = new
                continue
            seen[k] = op
        kept.append(op)
    block.ops = kept


def cse(fn: Function):
    """Merge identical pure ops. Loads are not merged: a store between two loads may change memory."""
    mapping = {}
    _cse_block(fn.body, {}, mapping)
    _replace_uses(fn.body, mapping)
    return fn


def _uses(fn):
    used = set()
    for op in fn.walk():
        used.update(v.id for v in op.operands)
    return used


def _dce_block(block: Block, used: set) -> bool:
    changed = False
    kept = []
    for op in block.ops:
        for region in op.regions:
            changed |= _dce_block(region, used)
        if not _has_effects(op) and not any(r.id in used for r in op.results):
            changed = True
            continue
        kept.append(op)
    block.ops = kept
    return changed


def dce(fn: Function):
    """Delete ops whose results are unused and that have no side effects (loops included)."""
    while _dce_block(fn.body, _uses(fn)):
        pass
    return fn


def optimize(fn: Function):
    for p in (fold_constants, cse, dce):
        p(fn)
    return fn
