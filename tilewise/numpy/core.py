"""How an operation on tilewise.numpy arrays becomes a pending node, with NumPy's checks done at the call.

Shapes, dtypes and every error NumPy would raise (broadcasting, dtype resolution, out-of-range Python
integers, casting into `out`, empty reductions without identity) are settled here, eagerly; the values
come later (evaluate.py). An operation whose operands all exist and whose result is small runs at once
through NumPy. Writes into memory that a pending value still reads evaluate that value first."""
from __future__ import annotations

import math
import weakref

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from . import expr, storage
from .evaluate import evaluate
from .expr import Leaf, Map, Reduce, Scalar

_PENDING = {}  # id -> weak reference of each array whose value is pending (evaluated before a write)
_COMPARISONS = frozenset(("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"))


class Deferred:
    """The part of tilewise.numpy.ndarray that this module needs: a node, made real on request."""
    __slots__ = ("_node", "__weakref__")

    def _set(self, node):
        self._node = node
        key = id(self)
        if isinstance(node, Leaf):
            _PENDING.pop(key, None)
        elif key not in _PENDING:
            _PENDING[key] = weakref.ref(self, lambda _, key=key: _PENDING.pop(key, None))
        return self

    def _value(self):
        """The value as a NumPy array over this array's memory (evaluated once, then kept)."""
        node = self._node
        if not isinstance(node, Leaf):
            self._set(Leaf(evaluate(node)))
        return self._node.array


def before_write(target):
    """Evaluate every pending array that reads the memory `target` (a NumPy array) is part of."""
    b = storage.memory_id(target)
    for ref in list(_PENDING.values()):
        a = ref()
        if a is not None and b in a._node.bases:
            a._value()


def as_node(x):
    """A node for an operand: our arrays' nodes, NumPy arrays as leaves (read now: their owner may change
    them), Python scalars as weak scalars, anything else through np.asarray."""
    if isinstance(x, Deferred):
        return x._node
    if isinstance(x, (bool, int, float, complex, np.generic)):
        return Scalar(x)
    if storage.on_device(x):
        return Leaf(x)
    return Leaf(np.asarray(x))


def _dtype_of(node):
    """What NumPy resolves with: Python scalars are weak (their type), NumPy scalars strong (their dtype)."""
    if isinstance(node, Scalar) and not isinstance(node.value, (np.generic, bool)):
        return type(node.value)
    return node.dtype


def _foreign(x):
    return isinstance(x, np.ndarray) and not isinstance(x, Deferred)


def apply_ufunc(name, inputs, wrap, out=None, dtype=None):
    """`numpy.<name>(*inputs, out=out, dtype=dtype)` as a pending node; returns our array (or `out`)."""
    ufunc = getattr(np, name)
    if out is None and dtype is None:  # small existing operands: NumPy at once, with the least overhead
        small = _small_values(inputs)
        if small is not None:
            return wrap(ufunc(*small))
    nodes = [as_node(x) for x in inputs]
    if len(nodes) != ufunc.nin:
        raise TypeError(f"{name}() takes from {ufunc.nin} to {ufunc.nin + 1} positional arguments but "
                        f"{len(nodes)} were given")
    dtypes = (*map(_dtype_of, nodes), None)
    if dtype is None:
        loop = ufunc.resolve_dtypes(dtypes)
    else:
        loop = ufunc.resolve_dtypes(dtypes, signature=(None,) * ufunc.nin + (np.dtype(dtype),))
    loop, out_dtype = loop[:ufunc.nin], loop[-1]
    shape = _broadcast(ufunc, nodes)
    try:
        nodes = [Scalar(_convert(n.value, dt)) if isinstance(n, Scalar) else n for n, dt in zip(nodes, loop)]
    except OverflowError:
        if name not in _COMPARISONS:
            raise
        return wrap(Leaf(np.asarray(ufunc(*[evaluate(n) if not isinstance(n, Scalar) else n.value for n in nodes]))))
    node = Map(name, nodes, shape, out_dtype, loop)
    eager = any(_foreign(x) for x in inputs) or \
        (math.prod(shape) < expr.SMALL and all(isinstance(n, (Leaf, Scalar)) for n in nodes))
    return _finish(node, wrap, out, eager, name)


def _small_values(inputs):
    """The NumPy values of `inputs` when each is a small existing array of ours or a Python scalar, else None."""
    values = []
    for x in inputs:
        if isinstance(x, Deferred):
            node = x._node
            if type(node) is not Leaf or type(node.array) is not np.ndarray or node.array.size >= expr.SMALL:
                return None
            values.append(node.array)
        elif type(x) in (int, float, bool):
            values.append(x)
        else:
            return None
    return values


def _broadcast(ufunc, nodes):
    """The broadcast shape, or NumPy's own error for these operands (raised by the ufunc on stride-0
    stand-ins, which cost no memory)."""
    try:
        return np.broadcast_shapes(*(n.shape for n in nodes))
    except ValueError:
        ufunc(*[np.lib.stride_tricks.as_strided(np.zeros(1, n.dtype), n.shape, (0,) * len(n.shape))
                for n in nodes])
        raise


def _convert(value, dt):
    """A Python scalar converted to the loop dtype as NumPy converts it (OverflowError when out of range)."""
    if isinstance(value, int) and not isinstance(value, (bool, np.generic)) and dt.kind in "iu":
        dt.type(value)  # raises NumPy's OverflowError
    return value


def _finish(node, wrap, out, eager, what):
    if node.count > expr.MAX_NODES:
        node = _shallow(node)
    if out is None:
        return wrap(Leaf(evaluate(node))) if eager else wrap(node)
    return write(out, node, what)


def _shallow(node):
    """The node with its operands evaluated: a graph past MAX_NODES is cut here."""
    if isinstance(node, Map):
        return Map(node.name, [Leaf(evaluate(a)) if not isinstance(a, (Leaf, Scalar)) else a for a in node.args],
                   node.shape, node.dtype, node.loop)
    return node


def write(out, node, what, casting="same_kind"):
    """Store `node`'s value into `out` (ours or a NumPy array), as a ufunc's `out=` does."""
    if not np.can_cast(node.dtype, out.dtype, casting=casting):
        raise TypeError(f"Cannot cast ufunc '{what}' output from {node.dtype!r} to {out.dtype!r} with casting "
                        f"rule '{casting}'")
    if tuple(out.shape) != node.shape and np.broadcast_shapes(tuple(out.shape), node.shape) == tuple(out.shape):
        node = Map("cast", [node], tuple(out.shape), node.dtype, (node.dtype,))  # broadcast into out
    if tuple(out.shape) != node.shape:
        raise ValueError(f"non-broadcastable output operand with shape {tuple(out.shape)} doesn't match the "
                         f"broadcast shape {node.shape}")
    if isinstance(out, Deferred) and not isinstance(out._node, Leaf):  # still pending: stays pending
        return out._set(node if node.dtype == out.dtype else
                        Map("cast", [node], node.shape, out.dtype, (node.dtype,)))
    target = out._value() if isinstance(out, Deferred) else out
    if node.device is not None and node.device is not storage.device_of(target):
        raise ValueError(f"cannot write a value on {storage.device_name(node.device)} into an array on "
                         f"{storage.device_name(storage.device_of(target))}")
    before_write(target)
    if _overlaps(node, target):
        evaluate(Leaf(evaluate(node)), target)
    else:
        evaluate(node, target)
    return out


def _overlaps(node, target):
    """Whether a leaf below `node` shares memory with `target` other than element for element."""
    from .expr import walk
    for n in walk(node):
        if isinstance(n, Leaf) and storage.may_share_memory(n.array, target):
            if not storage.same_view(storage.broadcast(n.array, target.shape), target):
                return True
    return False


# ---- reductions ----------------------------------------------------------------------------------

_NO_IDENTITY = ("max", "min")


def reduce(op, x, wrap, axis=None, dtype=None, out=None, keepdims=False):
    """`numpy.<op>(x, axis, dtype, out, keepdims)` for op in sum, prod, max, min, any, all."""
    node = as_node(x)
    axes = tuple(range(len(node.shape))) if axis is None else normalize_axis_tuple(axis, len(node.shape))
    if op in _NO_IDENTITY and any(node.shape[k] == 0 for k in axes):
        getattr(np, op)(np.empty(node.shape, node.dtype), axis=axes)  # raises NumPy's ValueError
    if op in ("sum", "prod"):
        rdtype = getattr(np, op)(np.zeros((1,), node.dtype), dtype=dtype).dtype
    elif op in ("any", "all"):
        rdtype = np.dtype(bool)
    else:
        rdtype = node.dtype
    r = Reduce(op, node, axes, keepdims, rdtype)
    eager = _foreign(x) or (isinstance(node, Leaf) and node.size < expr.SMALL)
    return _finish(r, wrap, out, eager, op)


def count(shape, axis):
    axes = tuple(range(len(shape))) if axis is None else normalize_axis_tuple(axis, len(shape))
    return math.prod(shape[k] for k in axes)


__all__ = ["Deferred", "apply_ufunc", "reduce", "write", "before_write", "as_node", "count"]
