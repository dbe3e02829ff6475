"""Evaluation: a pending node's value. The graph is cut into fusable groups (element-wise maps, ending
at most in one reduction); each runs as one generated tile kernel (kernels.py). On the CPU, a group
below expr.SMALL elements runs through NumPy directly: no kernel, no compile, so loops over small
arrays stay near NumPy's speed. Groups whose dtypes or operations the tile code does not cover
exactly run through NumPy too: on a device that is a visible fallback (the values go to the host and
back)."""
from __future__ import annotations

import numpy as np

from . import expr, kernels, notice, storage
from .expr import Leaf, Map, Reduce, Scalar


def evaluate(node, out=None):
    """The node's value: a NumPy array on the CPU, a DeviceArray on a device (written into `out`, an
    array of its shape on its device, if given)."""
    device = node.device if node.device is not None else (storage.device_of(out) if out is not None else storage.CPU)
    if isinstance(node, (Leaf, Scalar)):
        if out is None:
            return node.array if isinstance(node, Leaf) else np.asarray(node.value)
        if device == storage.CPU:
            np.copyto(out, node.array if isinstance(node, Leaf) else node.value, casting="unsafe")
            return out
        return kernels.run(Map("cast", [node], out.shape, out.dtype, (node.dtype,)), out, evaluate)
    big = node.arg.size if isinstance(node, Reduce) else node.size
    if device != storage.CPU:
        if big > 0 and kernels.supported(node, device):
            return kernels.run(node, out, evaluate)
        notice.note(f"{getattr(node, 'name', None) or node.op} on {storage.device_name(device)}")
        r = storage.to_device(_numpy(node), device)
        return r if out is None else evaluate(Leaf(r), out)
    if big >= expr.SMALL and big > 0 and kernels.supported(node, device):
        return kernels.run(node, out, evaluate)
    return _numpy(node, out)


def _operand(node):
    """A NumPy operand for a small evaluation: Python scalars stay Python scalars (weak)."""
    return node.value if isinstance(node, Scalar) else storage.to_host(evaluate(node))


def _numpy(node, out=None):
    if isinstance(node, Reduce):
        arg = storage.to_host(evaluate(node.arg))
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
    if r.shape != node.shape:
        r = np.broadcast_to(r, node.shape).copy()
    if out is not None:
        np.copyto(out, r, casting="unsafe")
        return out
    return r
