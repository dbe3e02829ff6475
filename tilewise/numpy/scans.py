"""Walks along one axis that carry a value from tile to tile: `cumsum`/`cumprod` (a running total) and
`argmax`/`argmin` (the best value so far and its index). Each is one generated kernel over rows x
columns (kernels.rows_layout), reading its element-wise input fused, one block per TM rows."""
from __future__ import annotations

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from . import expr, kernels, notice, storage
from .evaluate import evaluate
from .expr import Leaf, Map

# op: (identity, the tile scan, combine, the tile's total)
_SCAN = {"cumsum": ("0", "tw.cumsum", "({0} + {1})", "tw.sum"),
         "cumprod": ("1", "tw.cumprod", "({0} * {1})", "tw.prod")}


def _axis_node(node, axis):
    """(node, axis): axis=None walks the flattened values, as NumPy does."""
    if axis is None:
        return Leaf(flatten(evaluate(node))), 0
    return node, normalize_axis_index(axis, len(node.shape))


def flatten(a):
    """The values of `a` in C order as one dimension: a view where the layout allows, else a copy."""
    flat = storage.view(a, np.reshape, -1)
    if flat is None:
        copy = storage.empty(a.shape, a.dtype, storage.device_of(a))
        kernels.run(Map("cast", [Leaf(a)], a.shape, a.dtype, (a.dtype,)), copy, evaluate)
        flat = storage.contiguous_reshape(copy, (a.size,))
    return flat


def _numpy_runs(node):
    """Small or empty inputs on the CPU, and groups the tile code does not cover, run through NumPy (on a
    device, after copying to the host: a visible fallback)."""
    if node.device not in (None, storage.CPU):
        return node.size == 0 or not kernels.supported(node, node.device)
    return node.size == 0 or node.size < expr.SMALL or not kernels.supported(node)


def _through_numpy(op, node, device, **kwargs):
    if device not in (None, storage.CPU):
        notice.note(f"{op} on {storage.device_name(device)}")
    r = np.asarray(getattr(np, op)(storage.to_host(evaluate(node)), **kwargs))
    return storage.to_device(r, device) if device not in (None, storage.CPU) else r


def scan_source(prog, op, acc):
    ident, scan, combine, total = _SCAN[op]
    name = kernels._name(op, prog.ops)
    value = f"tw.astype({prog.value}, {kernels._tw(acc)})"
    lines = [kernels._def(name, prog.params("out", "nr"), 2), "    i = tw.bid(0)",
             f"    carry = tw.full((TM, 1), {ident}, {kernels._tw(acc)})",
             "    for c in range(tw.cdiv(nr, TN)):",
             *kernels._loads(prog, 2, "(i, c)", "        "),
             f"        v = {value}",
             f"        tw.store(out, index=(i, c), tile={combine.format(scan + '(v, axis=1)', 'carry')})",
             # elements past the row's end only follow its last one: they never reach a stored total
             f"        carry = {combine.format('carry', total + '(v, axis=1, keepdims=True)')}"]
    return name, "\n".join(lines) + "\n"


def cumulative(op, node, axis, dtype):
    """cumsum/cumprod of `node` along `axis` in `dtype` (NumPy's: int64 for small ints and bool)."""
    node, axis = _axis_node(node, axis)
    shape = node.shape
    if _numpy_runs(node) or kernels.D.from_numpy(dtype) is None:
        return _through_numpy(op, node, node.device, axis=axis, dtype=dtype)
    acc = np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize < 4 else dtype
    prog, nk, nr = kernels.rows_layout(node, (axis,), evaluate)
    kept = [k for k in range(len(shape)) if k != axis]
    out = storage.empty(tuple(shape[k] for k in kept) + (shape[axis],), acc, prog.device())
    name, source = scan_source(prog, op, acc)
    tm, tn = kernels.TILE_2D
    kernels.launch(None, (kernels.tw.cdiv(nk, tm),), kernels.kernel_for(source, name),
                   (*prog.arrays, *prog.scalar_args(), storage.contiguous_reshape(out, (nk, nr)), np.int64(nr), tm,
                    tn))
    result = storage.transpose(out, np.argsort(kept + [axis]))
    return result if acc == dtype else kernels.as_result(result, dtype, None, evaluate)


def arg_source(prog, op, dt):
    """Per row: the tile's best (first on ties; NaN wins, as NumPy's argmax/argmin) against the best so
    far, which only a strictly better value (or a first NaN) replaces."""
    better = ">" if op == "argmax" else "<"
    worst = kernels._identity("max" if op == "argmax" else "min", dt)
    best = "tw.max" if op == "argmax" else "tw.min"
    nan = dt.kind == "f"
    name = kernels._name(op, prog.ops)
    lines = [kernels._def(name, prog.params("out", "nr"), 2), "    i = tw.bid(0)",
             f"    best = tw.full((TM,), {worst}, {kernels._tw(dt)})", "    where = tw.full((TM,), 0, tw.int64)",
             "    for c in range(tw.cdiv(nr, TN)):",
             *kernels._loads(prog, 2, "(i, c)", "        "),
             "        m = (tw.arange(TN, dtype=tw.int64) + c * TN < nr)[None, :]",
             f"        v = tw.where(m, tw.astype({prog.value}, {kernels._tw(dt)}), {worst})",
             f"        top = {best}(v, axis=1)",
             f"        at = tw.astype(tw.{op}(v, axis=1), tw.int64) + c * TN",
             f"        wins = (top {better} best)" + (" | (tw.isnan(top) & ~tw.isnan(best))" if nan else ""),
             "        best = tw.where(wins, top, best)",
             "        where = tw.where(wins, at, where)",
             "    tw.store(out, index=(i,), tile=where)"]
    return name, "\n".join(lines) + "\n"


def arg_reduce(op, node, axis, keepdims):
    """argmax/argmin of `node` along `axis` (None: of the flattened values), as int64 indices."""
    shape = node.shape
    flat = axis is None
    node, ax = _axis_node(node, axis)
    if node.shape[ax] == 0:
        getattr(np, op)(np.empty(node.shape, node.dtype), axis=ax)  # raises NumPy's ValueError
    if _numpy_runs(node) or node.dtype.kind not in "biuf":
        r = _through_numpy(op, node, node.device, axis=ax)
    else:
        dt = np.dtype(np.int8) if node.dtype.kind == "b" else node.dtype
        prog, nk, nr = kernels.rows_layout(node, (ax,), evaluate)
        out = storage.empty((nk,), np.int64, prog.device())
        name, source = arg_source(prog, op, dt)
        tm, tn = kernels.TILE_2D
        kernels.launch(None, (kernels.tw.cdiv(nk, tm),), kernels.kernel_for(source, name),
                       (*prog.arrays, *prog.scalar_args(), out, np.int64(nr), tm, tn))
        r = storage.contiguous_reshape(out, tuple(n for k, n in enumerate(node.shape) if k != ax))
    if keepdims:
        r = storage.view(r, np.reshape, (1,) * len(shape)) if flat else storage.view(r, np.expand_dims, ax)
    return r
