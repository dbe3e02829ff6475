"""Evaluation: a pending node's value. The graph is cut into fusable groups (element-wise maps, ending
at most in one reduction); each runs as one generated tile kernel (kernels.py), or, below expr.SMALL
elements, through NumPy directly: no kernel, no compile, so loops over small arrays stay near NumPy's
speed. Groups whose dtypes or operations the tile code does not cover exactly also run through NumPy."""
from __future__ import annotations

import numpy as np

from . import expr, kernels
from .expr import Leaf, Reduce, Scalar


def evaluate(node, out=None):
    """The node's value as a NumPy array (written into `out`, a host array of its shape, if given)."""
    if isinstance(node, Leaf):
        if out is not None:
            np.copyto(out, node.array, casting="unsafe")
            return out
        return node.array
    if isinstance(node, Scalar):
        if out is not None:
            np.copyto(out, node.value, casting="unsafe")
            return out
        return np.asarray(node.value)
    big = node.arg.size if isinstance(node, Reduce) else node.size
    if big >= expr.SMALL and big > 0 and kernels.supported(node):
        return kernels.run(node, out, evaluate)
    return _numpy(node, out)


def _operand(node):
    """A NumPy operand for a small evaluation: Python scalars stay Python scalars (weak)."""
    return node.value if isinstance(node, Scalar) else evaluate(node)


def _numpy(node, out=None):
    if isinstance(node, Reduce):
        arg = evaluate(node.arg)
        kw = {"dtype": node.dtype} if node.op in ("sum", "prod") else {}
        with np.errstate(all="ignore"):
            r = np.asarray(getattr(np, node.op)(arg, axis=node.axes, keepdims=node.keepdims, **kw), node.dtype)
    else:
        args = [_operand(a) for a in node.args]
        with np.errstate(all="ignore"):
            if node.name == "cast":
                r = np.asarray(args[0]).astype(node.dtype)
            elif node.name == "where":
                r = np.where(*args).astype(node.dtype, copy=False)
            else:
                r = np.asarray(getattr(np, node.name)(*args)).astype(node.dtype, copy=False)
    if out is not None:
        np.copyto(out, r, casting="unsafe")
        return out
    return r if r.shape == node.shape else np.broadcast_to(r, node.shape).copy()
