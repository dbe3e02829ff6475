"""`tilewise.numpy.explain(x)`: how a pending array will run, without running it: its fusion groups, the
tile kernel each becomes (its generated source), and why each group ends where it does."""
from __future__ import annotations

import numpy as np

from . import expr, kernels
from .expr import Leaf, Map, Reduce, walk


def _placeholder(node):
    return np.empty(node.shape, node.dtype)  # stands for a value explain does not compute


def _describe(node, out):
    """Append one entry per group, operands' groups first."""
    arg = node.arg if isinstance(node, Reduce) else node
    for n in walk(arg, group=True):
        if n is not node and isinstance(n, Reduce):
            _describe(n, out)
    size = node.arg.size if isinstance(node, Reduce) else node.size
    kind = f"reduce ({node.op} over axes {node.axes})" if isinstance(node, Reduce) else "element-wise map"
    head = f"group {len(out) + 1}: {kind}, shape {node.shape}, dtype {node.dtype}"
    if size < expr.SMALL:
        out.append(f"{head}\n  runs through NumPy: {size} elements, fewer than {expr.SMALL} (no kernel, no compile)")
        return
    if not kernels.supported(node):
        out.append(f"{head}\n  runs through NumPy: a dtype or operation the tile code does not cover exactly")
        return
    prog = kernels.Program(arg, arg.shape, _placeholder)
    if isinstance(node, Reduce):
        op = {"any": "max", "all": "min"}.get(node.op, node.op)
        _, source = kernels.reduce_source(prog, op, node.dtype if op == node.op else np.dtype(np.int8))
    else:
        _, source = kernels.map_source(prog, 1, node.dtype)
    ends = "ends in a reduction" if isinstance(node, Reduce) else "ends in a store"
    reads = any(n is not arg and isinstance(n, Reduce) for n in walk(arg, group=True))
    text = f"{head}\n  one tile kernel, {ends}" + ("; reads the result of a reduction above (a reduction "
                                                    "ends its group)" if reads else "")
    out.append(text + "\n" + "\n".join("    " + ln for ln in source.splitlines()))


def explain(x):
    """A text saying how `x` will be computed (one group per generated kernel)."""
    node = getattr(x, "_node", None)
    if node is None or isinstance(node, Leaf):
        return "holds a value: nothing pending"
    out = []
    _describe(node, out)
    ops = sum(isinstance(n, Map) for n in walk(node))
    return f"{ops} element-wise operations in {len(out)} group(s)\n" + "\n".join(out)
