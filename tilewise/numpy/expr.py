"""Pending values: the expression graph that tilewise.numpy arrays hold until their value is needed.

A node knows its shape and dtype eagerly (NumPy's rules, so errors come at the call); its value comes
from evaluate.py."""
from __future__ import annotations

import math

import numpy as np

from . import storage

# Below this many elements an operation runs through NumPy at once. Measured: a launch costs 20-40 us
# and NumPy's loops run at >1 GB/s, so fusing pays from some tens of thousands of elements.
SMALL = 1 << 15
# A pending graph larger than this is evaluated where it stands: compile time grows with the kernel.
MAX_NODES = 48


class Node:
    """`device`: where the value's memory will be ("cpu" or a runtime Device; None for a scalar, which goes
    anywhere). One node's operands are all on one device."""
    __slots__ = ("shape", "dtype", "count", "bases", "device", "__weakref__")

    def __init__(self, shape, dtype, count=1, bases=frozenset(), device=None):
        self.shape, self.dtype, self.count, self.bases = tuple(shape), np.dtype(dtype), count, bases
        self.device = device

    @property
    def size(self):
        return math.prod(self.shape)


class Leaf(Node):
    """A value that exists: a NumPy array over host memory (a view where the array is one)."""
    __slots__ = ("array",)
    count = 0

    def __init__(self, array):  # on every small operation's path: kept lean
        self.shape, self.dtype, self.array = array.shape, array.dtype, array

    @property
    def bases(self):
        return frozenset((storage.memory_id(self.array),))

    @property
    def device(self):
        return storage.device_of(self.array)


class Scalar(Node):
    """A Python or NumPy scalar operand, kept as its value so it stays weak (NEP 50) and so a new value
    needs no new kernel (it is a runtime argument)."""
    __slots__ = ("value",)

    def __init__(self, value):
        super().__init__((), np.asarray(value).dtype, 0)
        self.value = value


class Map(Node):
    """An element-wise operation: a ufunc (`name`, with NumPy's loop dtypes `loop`), or `cast`, `where`."""
    __slots__ = ("name", "args", "loop")

    def __init__(self, name, args, shape, dtype, loop):
        super().__init__(shape, dtype, 1 + sum(a.count for a in args), frozenset().union(*(a.bases for a in args)),
                         common_device(args))
        self.name, self.args, self.loop = name, tuple(args), tuple(loop)


class Reduce(Node):
    """`op` in sum, prod, max, min, any, all over `axes` of `arg`, in `dtype` (NumPy's result dtype)."""
    __slots__ = ("op", "arg", "axes", "keepdims")

    def __init__(self, op, arg, axes, keepdims, dtype):
        shape = tuple(1 if i in axes else n for i, n in enumerate(arg.shape) if keepdims or i not in axes)
        super().__init__(shape, dtype, arg.count + 1, arg.bases, arg.device)
        self.op, self.arg, self.axes, self.keepdims = op, arg, tuple(sorted(axes)), keepdims


def common_device(nodes):
    """The one device of these operands (None when all are scalars); a ValueError where they differ."""
    found = None
    for n in nodes:
        d = n.device
        if d is not None and found is not None and d is not found:
            raise ValueError(f"operands are on different devices ({storage.device_name(found)} and "
                             f"{storage.device_name(d)}); move one with x.to_device(...)")
        found = d if d is not None else found
    return found


REDUCERS = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum,
            "any": np.logical_or, "all": np.logical_and}


def walk(node, group=False):
    """Every node below and including `node`, each once, operands first; with `group`, not below the
    reductions it meets (they end the group that reads them)."""
    seen, order, stack = set(), [], [(node, False)]
    while stack:
        n, done = stack.pop()
        if done:
            order.append(n)
            continue
        if id(n) in seen:
            continue
        seen.add(id(n))
        stack.append((n, True))
        below = n.args if isinstance(n, Map) else (n.arg,) if isinstance(n, Reduce) and not group else ()
        for a in below:
            stack.append((a, False))
    return order
