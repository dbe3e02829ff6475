"""Lowering rules of the memory functions: tile loads and stores, gather/scatter and atomics."""
from __future__ import annotations

from .. import language as L
from ..errors import TileTypeError, TileValueError
from ..ir import dtypes as D
from . import sema as S
from .registry import builtin
from .values import ArrayV, TileV, describe, is_py_scalar


def _index_tuple(b, index, ndim, what="index"):
    if not isinstance(index, tuple):
        index = (index,)
    if len(index) != ndim:
        raise TileValueError(f"{what} has {len(index)} entries but the array has {ndim} dimension(s); pass one "
                             "index per array dimension, as a tuple")
    return [S.scalar_index(b, i, what).v for i in index]


def _order(order, ndim):
    if order == "C":
        return tuple(range(ndim))
    if order == "F":
        return tuple(reversed(range(ndim)))
    if isinstance(order, tuple) and sorted(order) == list(range(ndim)):
        return order
    raise TileValueError(f"order must be 'C', 'F' or a permutation of {ndim} axes (e.g. "
                         f"{tuple(reversed(range(ndim)))}), got {order!r}")


def _array(x, what="array"):
    if not isinstance(x, ArrayV):
        raise TileTypeError(f"{what} must be an array parameter, got {describe(x)}; arrays come from kernel "
                            "arguments: pass an array (or a list of arrays, indexed as As[i]) at launch")
    return x


# ---- memory -------------------------------------------------------------------------------------

@builtin("load")
def load(b, array, index, shape, *, order="C", padding_mode=L.PaddingMode.UNDETERMINED, latency=None,
         allow_tma=None):
    """Load the tile at `index` of `array`'s tile space; out-of-bounds elements take `padding_mode`."""
    arr = _array(array)
    shape = S.const_shape(shape, "load shape")
    if shape and len(shape) != arr.ndim:
        raise TileValueError(f"load shape {shape} has rank {len(shape)} but '{arr.name}' has {arr.ndim} "
                             "dimension(s); give one tile dimension per array dimension (use 1 for a dimension "
                             "you do not tile, and reshape afterwards)")
    if not isinstance(padding_mode, L.PaddingMode):
        raise TileTypeError(f"padding_mode must be a tw.PaddingMode (e.g. tw.PaddingMode.ZERO), got "
                            f"{describe(padding_mode)}")
    if padding_mode.name in ("NAN", "POS_INF", "NEG_INF") and not arr.dtype.is_float:
        raise TileTypeError(f"padding_mode {padding_mode.name} needs a float array, '{arr.name}' is "
                            f"{arr.dtype.name}; use ZERO, or mask with tw.where after loading")
    if not shape:  # a 0-d array's element, or cuTile's single-element load `shape=()` of any array
        idx = _index_tuple(b, index, arr.ndim) if arr.ndim else [S.const(b, 0, D.int32).v]
        ndim = len(idx)
        one = TileV(b.one("load", [arr.v, *idx], shape=(1,) * ndim, order=tuple(range(ndim)),
                          padding=padding_mode.value))
        return S.reshape(b, one, ())
    idx = _index_tuple(b, index, arr.ndim)
    return TileV(b.one("load", [arr.v, *idx], shape=shape, order=_order(order, arr.ndim),
                       padding=padding_mode.value))


@builtin("store")
def store(b, array, index, tile, *, order="C", latency=None, allow_tma=None):
    """Store `tile` at `index` of `array`'s tile space; elements outside the array are dropped."""
    arr = _array(array)
    t = _store_value(b, arr, tile)
    if arr.zero_d:
        if t.ndim:
            raise TileValueError(f"'{arr.name}' is a 0-d array: store a scalar into it")
        _index_tuple(b, index, 0)
        b.emit("store", [arr.v, S.const(b, 0, D.int32).v, S.reshape(b, t, (1,)).v], order=(0,))
        return
    if t.ndim == 0:
        t = S.reshape(b, t, (1,) * arr.ndim)
    if t.ndim != arr.ndim:
        raise TileValueError(f"cannot store a tile of rank {t.ndim} into '{arr.name}' of rank {arr.ndim}; "
                             "reshape the tile to the array's rank first")
    idx = _index_tuple(b, index, arr.ndim)
    b.emit("store", [arr.v, *idx, t.v], order=_order(order, arr.ndim))


def _store_value(b, arr, tile):
    """A value cast to the array's dtype, refusing casts that would silently lose the kind (float->int)."""
    if not isinstance(tile, TileV):
        return S.as_tile(b, tile, arr.dtype)
    if tile.dtype is not arr.dtype and tile.dtype.is_float and not arr.dtype.is_float:
        raise TileTypeError(f"storing a {tile.dtype.name} tile into the {arr.dtype.name} array '{arr.name}' "
                            f"would truncate; convert explicitly with .astype({arr.dtype!r})")
    return S.cast(b, tile, arr.dtype)


def _indices(b, arr, indices, extra=()):
    """Broadcast index tiles (and value/mask tiles) to one shape."""
    if not isinstance(indices, tuple):
        indices = (indices,)
    if len(indices) != arr.ndim:
        raise TileValueError(f"need {arr.ndim} index tiles for '{arr.name}', got {len(indices)}")
    idx = [S.as_tile(b, i) for i in indices] if not arr.zero_d else [S.const(b, 0, D.int32)]
    for i in idx:
        if not i.dtype.is_int:
            raise TileTypeError(f"indices must be integer tiles, got {i.dtype.name}")
    shapes = [i.shape for i in idx] + [e.shape for e in extra if isinstance(e, TileV)]
    shape = S.broadcast_shapes(*shapes)
    return [S.broadcast_to(b, i, shape).v for i in idx], shape


def _mask(b, mask, shape):
    if mask is None:
        return []
    return [S.broadcast_to(b, S.to_bool(b, S.as_tile(b, mask)), shape).v]


@builtin("gather")
def gather(b, array, indices, *, mask=None, padding_value=0, latency=None):
    """Elements at integer index tiles; out-of-range or masked elements read `padding_value`."""
    arr = _array(array)
    idx, shape = _indices(b, arr, indices, (mask,) if isinstance(mask, TileV) else ())
    pad = padding_value
    if not is_py_scalar(pad):
        raise TileTypeError("padding_value must be a Python number")
    m = _mask(b, mask, shape)
    return TileV(b.one("gather", [arr.v, *idx, *m], masked=bool(m), padding_value=pad))


@builtin("scatter")
def scatter(b, array, indices, value, *, mask=None, latency=None):
    """Write `value` at integer index tiles; out-of-range or masked elements are skipped."""
    arr = _array(array)
    idx, shape = _indices(b, arr, indices, (value, mask))
    v = S.broadcast_to(b, _store_value(b, arr, value), shape)
    m = _mask(b, mask, shape)
    b.emit("scatter", [arr.v, *idx, v.v, *m], masked=bool(m))


def _atomic(kind):
    def impl(b, array, indices, *values, mask=None, memory_order=L.MemoryOrder.ACQ_REL,
             memory_scope=L.MemoryScope.DEVICE):
        arr = _array(array)
        if kind in ("and", "or", "xor") and arr.dtype.is_float:
            raise TileTypeError(f"atomic_{kind} needs an integer array, '{arr.name}' is {arr.dtype.name}")
        idx, shape = _indices(b, arr, indices, values + (mask,))
        vals = [S.broadcast_to(b, _store_value(b, arr, v), shape).v for v in values]
        m = _mask(b, mask, shape)
        out = TileV(b.one("atomic", [arr.v, *idx, *vals, *m], kind=kind, masked=bool(m)))
        return out
    impl.__doc__ = f"Atomic {kind} at integer indices; returns the old values."
    return impl


atomic_add = builtin("atomic_add")(_atomic("add"))
atomic_max = builtin("atomic_max")(_atomic("max"))
atomic_min = builtin("atomic_min")(_atomic("min"))
atomic_and = builtin("atomic_and")(_atomic("and"))
atomic_or = builtin("atomic_or")(_atomic("or"))
atomic_xor = builtin("atomic_xor")(_atomic("xor"))
atomic_xchg = builtin("atomic_xchg")(_atomic("xchg"))
atomic_cas = builtin("atomic_cas")(_atomic("cas"))


@builtin("num_tiles")
def num_tiles(b, array, axis, shape):
    """How many tiles of `shape` cover `array` along `axis` (partial tiles count)."""
    arr = _array(array)
    shape = S.const_shape(shape)
    axis = S.const_axis(axis, arr.ndim)
    return S.cdiv(b, S.array_shape(b, arr)[axis], shape[axis])
