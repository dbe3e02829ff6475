"""Functions that rearrange values without computing new ones.

Views (`reshape`, `transpose`, `moveaxis`, `expand_dims`, `squeeze`, `broadcast_to`, `flip`, `ravel`,
`atleast_*d`) share the evaluated array's memory, as NumPy's do. Joins (`concatenate`, `stack`,
`hstack`, `vstack`, `column_stack`) and `roll`, `copyto` write each operand into its place in the result
with one kernel each, which computes a pending operand fused (core.write)."""
from __future__ import annotations

import functools

import numpy as np
from numpy.lib.array_utils import normalize_axis_index

from . import core, storage
from .array import ndarray, wrap
from .expr import Leaf, common_device


def _value(x):
    return x._value() if isinstance(x, ndarray) else x if storage.on_device(x) else np.asarray(x)


def _ours(a):
    return a if isinstance(a, ndarray) else wrap(_value(a))


def _at(a, key):
    return a[key]


def _device(nodes):
    return common_device(nodes) or storage.CPU


def _view(np_fn):
    @functools.wraps(np_fn)  # NumPy's signature (inspect.signature follows __wrapped__)
    def fn(a, *args, **kwargs):
        return _ours(a)._view(np_fn, *args, **kwargs)
    fn.__doc__ = f"numpy.{np_fn.__name__}: a view of the evaluated array's memory where NumPy gives one."
    fn.__module__ = __name__
    return fn


VIEWS = {f.__name__: _view(f) for f in (np.reshape, np.transpose, np.swapaxes, np.moveaxis, np.expand_dims,
                                        np.squeeze, np.broadcast_to, np.flip, np.fliplr, np.flipud, np.ravel,
                                        np.rot90, np.diagonal)}


def _atleast(np_fn):
    def fn(*arys):
        out = [_ours(a)._view(np_fn) for a in arys]
        return out[0] if len(out) == 1 else out
    fn.__name__ = fn.__qualname__ = np_fn.__name__
    return fn


VIEWS.update({f.__name__: _atleast(f) for f in (np.atleast_1d, np.atleast_2d, np.atleast_3d)})


def _numpy_checks(np_fn, nodes, tiny, **kwargs):
    """Raise what NumPy raises for these operands: on zero-stride stand-ins (no memory), the full shapes
    when they disagree (NumPy then fails before it allocates), else one element per axis."""
    shapes = [(1,) * len(n.shape) if tiny else n.shape for n in nodes]
    np_fn([np.lib.stride_tricks.as_strided(np.zeros(1, n.dtype), shape, (0,) * len(shape))
           for n, shape in zip(nodes, shapes)], **kwargs)


def concatenate(arrays, axis=0, out=None, dtype=None, casting="same_kind"):
    if axis is None:
        arrays, axis = [VIEWS["ravel"](a) for a in arrays], 0
    nodes = [core.as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("need at least one array to concatenate")
    ndim = len(nodes[0].shape)
    if any(len(n.shape) != ndim for n in nodes) or ndim == 0:
        _numpy_checks(np.concatenate, nodes, False, axis=axis)
    axis = normalize_axis_index(axis, ndim)
    others = {tuple(s for k, s in enumerate(n.shape) if k != axis) for n in nodes}
    if len(others) > 1:
        _numpy_checks(np.concatenate, nodes, False, axis=axis)
    rdtype = np.dtype(dtype) if dtype is not None else np.result_type(*(n.dtype for n in nodes))
    if not all(np.can_cast(n.dtype, rdtype, casting=casting) for n in nodes):
        _numpy_checks(np.concatenate, nodes, True, axis=axis, dtype=dtype, casting=casting)
    shape = list(nodes[0].shape)
    shape[axis] = sum(n.shape[axis] for n in nodes)
    result = out if out is not None else wrap(storage.empty(tuple(shape), rdtype, _device(nodes)))
    target = result._value() if isinstance(result, ndarray) else result
    start = 0
    for n in nodes:
        place = [slice(None)] * ndim
        place[axis] = slice(start, start + n.shape[axis])
        core.write(storage.view(target, _at, tuple(place)), n, "concatenate", casting="unsafe")
        start += n.shape[axis]
    return result


def stack(arrays, axis=0, out=None, *, dtype=None, casting="same_kind"):
    nodes = [core.as_node(a) for a in arrays]
    if not nodes:
        raise ValueError("need at least one array to stack")
    if len({n.shape for n in nodes}) > 1:
        _numpy_checks(np.stack, nodes, False, axis=axis)
    axis = normalize_axis_index(axis, len(nodes[0].shape) + 1)
    rdtype = np.dtype(dtype) if dtype is not None else np.result_type(*(n.dtype for n in nodes))
    shape = list(nodes[0].shape)
    shape.insert(axis, len(nodes))
    result = out if out is not None else wrap(storage.empty(tuple(shape), rdtype, _device(nodes)))
    target = result._value() if isinstance(result, ndarray) else result
    for k, n in enumerate(nodes):
        core.write(storage.view(target, _at, (slice(None),) * axis + (k, Ellipsis)), n, "stack", casting="unsafe")
    return result


def hstack(tup, *, dtype=None, casting="same_kind"):
    arrays = VIEWS["atleast_1d"](*tup)
    arrays = arrays if isinstance(arrays, list) else [arrays]
    return concatenate(arrays, axis=0 if arrays[0].ndim == 1 else 1, dtype=dtype, casting=casting)


def vstack(tup, *, dtype=None, casting="same_kind"):
    arrays = VIEWS["atleast_2d"](*tup)
    return concatenate(arrays if isinstance(arrays, list) else [arrays], axis=0, dtype=dtype, casting=casting)


def column_stack(tup):
    arrays = [a if len(core.as_node(a).shape) >= 2 else VIEWS["reshape"](a, (-1, 1)) for a in tup]
    return concatenate(arrays, axis=1)


def roll(a, shift, axis=None):
    if axis is None:
        return VIEWS["reshape"](roll(VIEWS["ravel"](a), shift, 0), core.as_node(a).shape)
    if not isinstance(axis, int) or not isinstance(shift, (int, np.integer)):
        from .fallback import call  # several axes at once: NumPy moves the memory
        return call("roll", np.roll, (a, shift, axis), {})
    node = core.as_node(a)
    axis = normalize_axis_index(axis, len(node.shape))
    n = node.shape[axis]
    value = _value(a)
    result = storage.empty(node.shape, node.dtype, _device([node]))
    if n == 0:
        return wrap(result)
    k = int(shift) % n
    head, tail = [slice(None)] * len(node.shape), [slice(None)] * len(node.shape)
    head[axis], tail[axis] = slice(0, n - k), slice(n - k, n)
    dst_head, dst_tail = list(head), list(tail)
    dst_head[axis], dst_tail[axis] = slice(k, n), slice(0, k)
    for dst, src in ((dst_head, head), (dst_tail, tail)):
        core.write(storage.view(result, _at, tuple(dst)), Leaf(storage.view(value, _at, tuple(src))), "roll")
    return wrap(result)


def copyto(dst, src, casting="same_kind", where=True):
    if where is not True:
        np.copyto(_value(dst), _value(src), casting=casting, where=_value(where))
        return
    core.write(dst, core.as_node(src), "copyto", casting=casting)


def diff(a, n=1, axis=-1, prepend=np._NoValue, append=np._NoValue):
    if prepend is not np._NoValue or append is not np._NoValue:
        parts = [p for p in (prepend, a, append) if p is not np._NoValue]
        shape = core.as_node(a).shape
        ax = normalize_axis_index(axis, len(shape))
        parts = [p if core.as_node(p).shape else VIEWS["broadcast_to"](p, tuple(1 if k == ax else s for k, s in
                                                                                enumerate(shape))) for p in parts]
        a = concatenate(parts, axis=ax)
    value = a if isinstance(a, ndarray) else wrap(np.asarray(a))
    ax = normalize_axis_index(axis, value.ndim)
    for _ in range(n):
        hi = [slice(None)] * value.ndim
        lo = [slice(None)] * value.ndim
        hi[ax], lo[ax] = slice(1, None), slice(None, -1)
        op = "not_equal" if value.dtype == np.bool_ else "subtract"
        value = core.apply_ufunc(op, (value[tuple(hi)], value[tuple(lo)]), wrap)
    return value


def outer(a, b, out=None):
    x = VIEWS["ravel"](a)
    y = VIEWS["ravel"](b)
    return core.apply_ufunc("multiply", (x[:, None], y[None, :]), wrap, out=out)
