"""`tilewise.numpy.ndarray`: NumPy's array, with its value either in host memory or pending.

Shape and dtype are always known; the value is computed when it is needed (evaluate.py lists when).
Views share memory as NumPy's do: basic indexing, `.T`, `reshape` where possible and `[::-1]` of an
evaluated array are views of its memory."""
from __future__ import annotations

import numpy as np

from . import core, expr, notice, storage
from .expr import Leaf, Map

_BINARY_OPS = {"add": "add", "sub": "subtract", "mul": "multiply", "truediv": "true_divide",
               "floordiv": "floor_divide", "mod": "remainder", "pow": "power", "and": "bitwise_and",
               "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "left_shift", "rshift": "right_shift"}
# Filled by the modules above this one as they load, so the class needs no import of them: the functions
# its methods call (functions.py), NumPy's protocols (dispatch.py), and the namespace (__init__.py).
METHODS, PROTOCOLS, NAMESPACE = {}, {}, []
_COMPARE_OPS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
                "ge": "greater_equal"}


def wrap(node):
    a = object.__new__(ndarray)
    if isinstance(node, (np.ndarray, np.generic)):
        node = Leaf(np.asarray(node))
    elif storage.on_device(node):
        node = Leaf(node)
    return a._set(node)


class ndarray(core.Deferred):  # noqa: N801 - NumPy's name
    __slots__ = ()
    __array_priority__ = 100  # NumPy arrays on the left defer to our operators

    def __new__(cls, shape, dtype=float, buffer=None, offset=0, strides=None, order=None):
        arr = np.ndarray(shape, dtype, buffer, offset, strides, order)
        return object.__new__(cls)._set(Leaf(arr))

    # ---- what is known without evaluating ---------------------------------------------------------
    shape = property(lambda self: self._node.shape)
    dtype = property(lambda self: self._node.dtype)
    ndim = property(lambda self: len(self._node.shape))
    size = property(lambda self: self._node.size)
    itemsize = property(lambda self: self._node.dtype.itemsize)
    nbytes = property(lambda self: self._node.size * self._node.dtype.itemsize)
    device = property(lambda self: storage.device_name(self._node.device or storage.CPU))
    strides = property(lambda self: self._value().strides)
    flags = property(lambda self: self._host().flags)
    base = property(lambda self: None)

    @property
    def T(self):  # noqa: N802 - NumPy's name
        return self._view(np.transpose)

    @property
    def mT(self):  # noqa: N802 - NumPy's name
        if self.ndim < 2:
            raise ValueError("matrix transpose with ndim < 2 is undefined")
        return self._view(np.swapaxes, -1, -2)

    def _host(self):
        """The value in host memory (a copy when it lives on a device)."""
        return storage.to_host(self._value())

    def _view(self, np_function, *args, **kwargs):
        """`np_function` of the value, a view of its memory where NumPy gives one (on a device, of a
        contiguous copy where the layout allows none)."""
        v = self._value()
        r = storage.view(v, np_function, *args, **kwargs)
        if r is None:
            r = storage.view(_contiguous(v), np_function, *args, **kwargs)
        return wrap(r)

    def to_device(self, device, /, *, stream=None):
        """The array on `device` ("cpu", "cuda", "cuda:N", a Device): itself when it is there, else a copy."""
        target = storage.parse_device(device)
        if target == (self._node.device or storage.CPU):
            return self
        return wrap(storage.to_device(self._value(), target))

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    # ---- interop ----------------------------------------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        v = self._host()
        if copy and storage.device_of(self._value()) == storage.CPU:
            v = v.copy()
        return v if dtype is None else v.astype(dtype, copy=bool(copy))

    def __array_namespace__(self, api_version=None):
        return NAMESPACE[0]

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        kwargs = {"stream": stream, "max_version": max_version, "dl_device": dl_device, "copy": copy}
        return self._value().__dlpack__(**{k: v for k, v in kwargs.items() if v is not None})

    def __dlpack_device__(self):
        return self._value().__dlpack_device__()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return PROTOCOLS["array_ufunc"](ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return PROTOCOLS["array_function"](func, args, kwargs)

    def __reduce__(self):
        return (_rebuild, (self._host().copy(), self.device))

    def __repr__(self):
        text = repr(self._host())
        return text if self.device == storage.CPU else f"{text[:-1]}, device='{self.device}')"

    def __str__(self):
        return str(self._host())

    def __format__(self, spec):
        return format(self._host() if self.ndim else self._host()[()], spec)

    # ---- conversions ------------------------------------------------------------------------------
    def item(self, *args):
        return self._host().item(*args)

    def tolist(self):
        return self._host().tolist()

    def __float__(self):
        return float(self._host())

    def __int__(self):
        return int(self._host())

    def __complex__(self):
        return complex(self._host())

    def __bool__(self):
        return bool(self._host())

    def __index__(self):
        return self._host().__index__()

    def __iter__(self):
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __hash__(self):
        raise TypeError("unhashable type: 'tilewise.numpy.ndarray'")

    # ---- shape and copies ---------------------------------------------------------------------------
    def astype(self, dtype, order="K", casting="unsafe", subok=True, copy=True):
        dtype = np.dtype(dtype)
        if not np.can_cast(self.dtype, dtype, casting=casting):
            raise TypeError(f"Cannot cast array data from {self.dtype!r} to {dtype!r} according to the rule "
                            f"{casting!r}")
        if dtype == self.dtype and not copy:
            return self
        if isinstance(self._node, Leaf) and type(self._node.array) is np.ndarray and self.size < expr.SMALL:
            return wrap(self._node.array.astype(dtype))
        return wrap(Map("cast", [self._node], self.shape, dtype, (self.dtype,)))

    def copy(self, order="C"):
        v = self._value()
        if storage.device_of(v) == storage.CPU:
            return wrap(v.copy(order=order))
        return wrap(_contiguous(v, always=True))

    def reshape(self, *shape, order="C", copy=None):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        return self._view(np.reshape, shape, order=order)

    def ravel(self, order="C"):
        return self._view(np.ravel, order)

    def flatten(self, order="C"):
        return self.ravel(order).copy()

    def squeeze(self, axis=None):
        return self._view(np.squeeze, axis)

    def transpose(self, *axes):
        return self._view(np.transpose, axes or None)

    def swapaxes(self, a, b):
        return self._view(np.swapaxes, a, b)

    def view(self, dtype=None):
        return self._view(np.ndarray.view, dtype) if dtype is not None else self._view(np.ndarray.view)

    def fill(self, value):
        core.write(self, core.as_node(value), "fill", casting="unsafe")

    # ---- indexing ---------------------------------------------------------------------------------
    def __getitem__(self, key):
        key = _plain_key(key)
        if _is_basic(key) or storage.device_of(self._value()) == storage.CPU:
            return self._view(_index, key)
        notice.note("indexing with arrays on a device")  # gathers are not kernels yet
        return wrap(storage.to_device(np.asarray(self._host()[key]), self._node.device))

    def __setitem__(self, key, value):
        key = _plain_key(key)
        target = self._value()
        view = storage.view(target, _index, key) if _is_basic(key) else None
        if view is not None:
            core.write(view, core.as_node(value), "setitem", casting="unsafe")
            return
        core.before_write(target)
        if storage.device_of(target) == storage.CPU:
            target[key] = np.asarray(value) if isinstance(value, ndarray) else value
            return
        notice.note("assignment with arrays on a device")  # scatters are not kernels yet
        host = storage.to_host(target)
        host[key] = np.asarray(value) if isinstance(value, ndarray) else value
        core.write(target, Leaf(storage.to_device(host, target.device)), "setitem")

    # ---- methods NumPy's users call ------------------------------------------------------------------
    def sum(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _call("sum", self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def prod(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _call("prod", self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def max(self, axis=None, out=None, keepdims=False, **kw):
        return _call("max", self, axis=axis, out=out, keepdims=keepdims, **kw)

    def min(self, axis=None, out=None, keepdims=False, **kw):
        return _call("min", self, axis=axis, out=out, keepdims=keepdims, **kw)

    def any(self, axis=None, out=None, keepdims=False, **kw):
        return _call("any", self, axis=axis, out=out, keepdims=keepdims, **kw)

    def all(self, axis=None, out=None, keepdims=False, **kw):
        return _call("all", self, axis=axis, out=out, keepdims=keepdims, **kw)

    def mean(self, axis=None, dtype=None, out=None, keepdims=False, **kw):
        return _call("mean", self, axis=axis, dtype=dtype, out=out, keepdims=keepdims, **kw)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return _call("var", self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **kw):
        return _call("std", self, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims, **kw)

    def argmax(self, axis=None, out=None, keepdims=False):
        return _call("argmax", self, axis=axis, out=out, keepdims=keepdims)

    def argmin(self, axis=None, out=None, keepdims=False):
        return _call("argmin", self, axis=axis, out=out, keepdims=keepdims)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _call("cumsum", self, axis=axis, dtype=dtype, out=out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _call("cumprod", self, axis=axis, dtype=dtype, out=out)

    def clip(self, min=None, max=None, out=None, **kw):
        return _call("clip", self, min, max, out=out, **kw)

    def round(self, decimals=0, out=None):
        return _call("round", self, decimals=decimals, out=out)

    def dot(self, b, out=None):
        return _call("dot", self, b, out=out)

    def __matmul__(self, other):
        return _call("matmul", self, other)

    def __rmatmul__(self, other):
        return _call("matmul", other, self)

    def __neg__(self):
        return core.apply_ufunc("negative", (self,), wrap)

    def __pos__(self):
        return core.apply_ufunc("positive", (self,), wrap)

    def __abs__(self):
        return core.apply_ufunc("absolute", (self,), wrap)

    def __invert__(self):
        return core.apply_ufunc("invert", (self,), wrap)


def _call(name, *args, **kwargs):
    fn = METHODS.get(name) or getattr(NAMESPACE[0], name)
    return fn(*args, **kwargs)


def _index(a, key):
    """`a[key]` as an array, a view for a basic key (with an Ellipsis NumPy gives a 0-d view, not a scalar,
    for an integer on every axis)."""
    if isinstance(key, str):  # a field of a structured array (Dask's arg-reductions keep vals and arg so)
        return a[key]
    keys = key if isinstance(key, tuple) else (key,)
    return a[keys if any(k is Ellipsis for k in keys) else keys + (Ellipsis,)]


def _contiguous(v, always=False):
    """`v`'s values in a new C-contiguous array on its device (one kernel); `v` itself on the CPU unless
    `always`."""
    if storage.device_of(v) == storage.CPU and not always:
        return v
    out = storage.empty(v.shape, v.dtype, storage.device_of(v))
    core.evaluate(Leaf(v), out)
    return out


def _rebuild(values, device):
    return wrap(storage.to_device(values, storage.parse_device(device)))


def _plain_key(key):
    """Our arrays inside an index become NumPy arrays (indexing needs their values)."""
    if isinstance(key, tuple):
        return tuple(_plain_key(k) for k in key)
    return key._value() if isinstance(key, ndarray) else key


def _is_basic(key):
    items = key if isinstance(key, tuple) else (key,)
    return all(k is None or k is Ellipsis or isinstance(k, (slice, int, np.integer)) and not isinstance(k, bool)
               for k in items)


def _binary(ufunc_name, reflected=False, inplace=False):
    ufunc = getattr(np, ufunc_name)

    def op(self, other):
        node = self._node
        if not inplace and type(node) is Leaf and type(node.array) is np.ndarray and node.array.size < expr.SMALL:
            # small existing operands: NumPy at once (a loop over small arrays pays for every op)
            kind, y = type(other), None
            if kind is float or kind is int or kind is bool:
                y = other
            elif kind is ndarray and type(other._node) is Leaf and type(other._node.array) is np.ndarray \
                    and other._node.array.size < expr.SMALL:
                y = other._node.array
            if y is not None:
                r = ufunc(y, node.array) if reflected else ufunc(node.array, y)
                a = object.__new__(ndarray)
                a._node = Leaf(r if type(r) is np.ndarray else np.asarray(r))
                return a
        if not isinstance(other, (ndarray, np.ndarray, np.generic, bool, int, float, complex, list, tuple)):
            return NotImplemented
        args = (other, self) if reflected else (self, other)
        return core.apply_ufunc(ufunc_name, args, wrap, out=self if inplace else None)
    return op


for _short, _name in _BINARY_OPS.items():
    setattr(ndarray, f"__{_short}__", _binary(_name))
    setattr(ndarray, f"__r{_short}__", _binary(_name, reflected=True))
    setattr(ndarray, f"__i{_short}__", _binary(_name, inplace=True))
for _short, _name in _COMPARE_OPS.items():
    setattr(ndarray, f"__{_short}__", _binary(_name))
