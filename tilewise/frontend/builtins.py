"""The tile language's functions: each public name (`tw.load`, `tw.exp`, ...) is a host-side stub,
and this table maps the stub to its lowering rule `impl(builder, *args, **kwargs)`."""
from __future__ import annotations

import math
import re

import numpy as np

from .. import language as L
from ..errors import TileStaticAssertionError, TileTypeError, TileUnsupportedError, TileValueError
from ..ir import dtypes as D
from . import sema as S
from .registry import BUILTINS, PUBLIC, builtin  # noqa: F401 - BUILTINS and PUBLIC are read from here
from .values import TileV, describe, is_const, is_py_scalar


def to_dtype(x, what="dtype"):
    dt = D.from_any(x)
    if dt is None:
        raise TileTypeError(f"{what} must be a dtype (tw.float32, np.float32, torch.float32...), got {describe(x)}")
    if dt in D.HOST_ONLY:
        raise TileUnsupportedError(f"valid cuTile, not supported by tilewise yet: {dt.name} tiles (the type "
                                   "exists for host arrays; kernels cannot compute in it)")
    return dt


# ---- grid ---------------------------------------------------------------------------------------

def _axis012(axis):
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise TileValueError(f"grid axis must be 0, 1 or 2, got {axis!r}")
    return axis


@builtin("bid")
def bid(b, axis):
    """This block's index along grid axis 0, 1 or 2 (an int32 scalar)."""
    return TileV(b.one("bid", axis=_axis012(axis)))


@builtin("num_blocks")
def num_blocks(b, axis):
    """The grid's size along axis 0, 1 or 2."""
    return TileV(b.one("num_blocks", axis=_axis012(axis)))


@builtin("cdiv", host=L.cdiv)
def cdiv(b, x, y):
    """Ceiling division of integers."""
    return S.cdiv(b, x, y)


# ---- elementwise --------------------------------------------------------------------------------

def _binary(fn):
    def impl(b, x, y, *, rounding_mode=None, flush_to_zero=False):
        return S.binary(b, fn, x, y)
    impl.__doc__ = f"Elementwise {fn} with promotion and broadcasting."
    return impl


def _unary(fn):
    def impl(b, x, *, rounding_mode=None, flush_to_zero=False):
        return S.unary(b, fn, x)
    impl.__doc__ = f"Elementwise {fn}."
    return impl


_BINARY_NAMES = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "truediv", "floordiv": "floordiv",
                 "mod": "mod", "pow": "pow", "minimum": "minimum", "maximum": "maximum", "atan2": "atan2",
                 "bitwise_and": "and", "bitwise_or": "or", "bitwise_xor": "xor", "left_shift": "shl",
                 "right_shift": "shr", "bitwise_lshift": "shl", "bitwise_rshift": "shr", "equal": "eq",
                 "not_equal": "ne", "less": "lt", "less_equal": "le", "greater": "gt", "greater_equal": "ge"}
_UNARY_NAMES = {n: n for n in ("exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt",
                               "sin", "cos", "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan",
                               "sigmoid", "erf", "abs", "floor", "ceil", "trunc", "isnan", "isinf",
                               "isfinite")}
_UNARY_NAMES.update(negative="neg", bitwise_not="invert", round="round")
ELEMENTWISE = {name: builtin(name)(_binary(fn)) for name, fn in _BINARY_NAMES.items()}
ELEMENTWISE.update({name: builtin(name)(_unary(fn)) for name, fn in _UNARY_NAMES.items()})


@builtin("where")
def where(b, cond, x, y):
    """Elementwise select: x where cond is true, else y."""
    return S.where(b, cond, x, y)


@builtin("logical_and")
def logical_and(b, x, y):
    return S.logical(b, "and", x, y)


@builtin("logical_or")
def logical_or(b, x, y):
    return S.logical(b, "or", x, y)


@builtin("logical_not")
def logical_not(b, x):
    return S.logical_not(b, x)


@builtin("divmod")
def divmod_(b, x, y):
    """(x // y, x % y), element-wise, with Python's rounding toward -inf (floats too)."""
    return S.binary(b, "floordiv", x, y), S.binary(b, "mod", x, y)


# ---- casts --------------------------------------------------------------------------------------

@builtin("astype")
def astype(b, x, dtype):
    """Convert to `dtype` (round to nearest even; float->int truncates and saturates, NaN -> 0)."""
    dt = to_dtype(dtype)
    return S.cast(b, S.as_tile(b, x), dt)


@builtin("bitcast")
def bitcast(b, x, dtype):
    """Reinterpret the bits as `dtype` of the same width."""
    dt = to_dtype(dtype)
    x = S.as_tile(b, x)
    if x.dtype.bits != dt.bits:
        raise TileTypeError(f"bitcast from {x.dtype.name} ({x.dtype.bits} bits) to {dt.name} ({dt.bits} bits) "
                            "changes the width; bitcast needs a dtype of the same width, and astype converts values")
    return x if x.dtype is dt else TileV(b.one("bitcast", [x.v], dtype=dt))


# ---- reductions and scans -----------------------------------------------------------------------

def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        return tuple(sorted({S.const_axis(a, ndim) for a in axis}))
    return (S.const_axis(axis, ndim),)


def _reduce(fn):
    def impl(b, x, axis=None, *, keepdims=False):
        x = S.require_tile(S.as_tile(b, x))
        if x.ndim == 0:
            return S.const(b, 0, D.int32) if fn in ("argmax", "argmin") else x
        axes = _axes(axis, x.ndim)
        kept_shape = (1,) * x.ndim
        if fn in ("argmax", "argmin") and len(axes) > 1:
            x = S.reshape(b, x, (-1,)) if axis is None else x
            axes = (0,) if axis is None else axes
            if len(axes) > 1:
                raise TileValueError(f"{fn} takes a single axis")
        if x.dtype.is_bool and fn in ("sum", "prod"):
            x = S.cast(b, x, D.int32)
        out = TileV(b.one("reduce", [x.v], fn=fn, axes=axes, keepdims=bool(keepdims)))
        # argmax(axis=None, keepdims=True) keeps every axis as 1, as NumPy does, though it reduced a flat view
        return S.reshape(b, out, kept_shape) if keepdims and axis is None else out
    impl.__doc__ = f"{fn} over `axis` (all axes when None), optionally keeping reduced dims as 1."
    return impl


sum_ = builtin("sum")(_reduce("sum"))
prod = builtin("prod")(_reduce("prod"))
max_ = builtin("max")(_reduce("max"))
min_ = builtin("min")(_reduce("min"))
argmax = builtin("argmax")(_reduce("argmax"))
argmin = builtin("argmin")(_reduce("argmin"))


def _scan(fn):
    def impl(b, x, axis=0, *, reverse=False):
        x = S.require_tile(S.as_tile(b, x))
        if x.ndim == 0:
            raise TileValueError(f"{fn} needs a tile of rank >= 1")
        if reverse:
            raise TileUnsupportedError(f"{fn}(reverse=True) is not implemented")
        if x.dtype.is_bool:
            x = S.cast(b, x, D.int32)
        return TileV(b.one("scan", [x.v], fn=fn, axis=S.const_axis(axis, x.ndim)))
    impl.__doc__ = f"Inclusive {fn} along `axis`."
    return impl


cumsum = builtin("cumsum")(_scan("cumsum"))
cumprod = builtin("cumprod")(_scan("cumprod"))


# ---- matmul -------------------------------------------------------------------------------------

def _mm_operands(b, x, y):
    x, y = S.require_tile(x, "matmul operand"), S.require_tile(y, "matmul operand")
    if x.ndim < 2 or y.ndim < 2:
        raise TileTypeError(f"matmul needs tiles of rank >= 2, got shapes {x.shape} and {y.shape}")
    if x.shape[-1] != y.shape[-2]:
        raise TileTypeError(f"matmul inner dimensions differ: {x.shape} @ {y.shape}; the last dimension of the "
                            "left operand must match the second-to-last of the right (transpose one with .T?)")
    batch = S.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    x = S.broadcast_to(b, x, batch + x.shape[-2:])
    y = S.broadcast_to(b, y, batch + y.shape[-2:])
    return x, y


def _mm_input_dtype(x, y):
    if x.dtype is y.dtype:
        return x.dtype
    if x.dtype.bits == 8 and y.dtype.bits == 8 and x.dtype.is_float and y.dtype.is_float:
        return D.float16
    return D.promote(x.dtype, y.dtype)


@builtin("matmul")
def matmul(b, x, y):
    """Matrix product with promotion; fp16/bf16/fp8 inputs accumulate in fp32 internally."""
    x, y = _mm_operands(b, x, y)
    dt = _mm_input_dtype(x, y)
    x, y = S.cast(b, x, dt), S.cast(b, y, dt)
    # Narrow integer products accumulate and return in int32, as tensor-core int8 mma does.
    out = D.float32 if dt is D.tfloat32 else (D.int32 if dt.is_bool or (dt.is_int and dt.bits < 32) else dt)
    return TileV(b.one("matmul", [x.v, y.v], dtype=out))


@builtin("mma")
def mma(b, x, y, acc):
    """acc + x @ y, keeping the accumulator's dtype (fp16/bf16/fp8/tf32 inputs, fp32 accumulator)."""
    x, y = _mm_operands(b, x, y)
    acc = S.require_tile(acc, "accumulator")
    dt = _mm_input_dtype(x, y)
    x, y = S.cast(b, x, dt), S.cast(b, y, dt)
    shape = x.shape[:-1] + y.shape[-1:]
    if acc.shape != shape:
        raise TileTypeError(f"mma accumulator has shape {acc.shape}, the product has {shape}; create the "
                            f"accumulator with that shape, e.g. tw.zeros({shape}, tw.float32)")
    return TileV(b.one("matmul", [x.v, y.v, acc.v], dtype=acc.dtype))


@builtin("mma_scaled")
def mma_scaled(b, x, x_scale, y, y_scale, /, acc):
    """cuTile's block-scaled MMA (fp4/fp8 with e8m0 scales) needs Blackwell tensor cores: not supported."""
    raise TileUnsupportedError("mma_scaled (block-scaled fp4/fp8 MMA) is a Blackwell-only cuTile feature that "
                               "tilewise does not support; scale the operands explicitly and use tw.mma")


@builtin("assume_divisible_by")
def assume_divisible_by(b, x, divisor):
    """A divisibility promise for the compiler (cuTile); the value is returned unchanged."""
    if isinstance(divisor, bool) or not isinstance(divisor, int) or divisor < 1:
        raise TileValueError(f"assume_divisible_by needs a positive compile-time int divisor, got {describe(divisor)}")
    x = S.as_tile(b, x) if not is_const(x) else x
    if is_const(x):
        if x % divisor:
            raise TileValueError(f"assume_divisible_by: {x} is not divisible by {divisor}")
        return x
    if not x.dtype.is_int:
        raise TileTypeError(f"assume_divisible_by needs an integer, got {x.dtype.name}")
    return x


# ---- shapes -------------------------------------------------------------------------------------

@builtin("reshape")
def reshape(b, x, shape):
    """Same elements in row-major order, new shape (-1 infers one dimension)."""
    return S.reshape(b, S.require_tile(S.as_tile(b, x)), shape)


@builtin("permute")
def permute(b, x, axes):
    """Reorder axes: result.shape[i] = x.shape[axes[i]]."""
    x = S.require_tile(x)
    axes = tuple(S.const_axis(a, x.ndim) for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise TileValueError(f"{axes} is not a permutation of {x.ndim} axes; name each axis 0..{x.ndim - 1} "
                             "exactly once")
    return x if axes == tuple(range(x.ndim)) else TileV(b.one("permute", [x.v], perm=axes))


@builtin("transpose")
def transpose(b, x, axis0=None, axis1=None):
    """Swap two axes (the last two, or both of a 2-D tile, by default)."""
    x = S.require_tile(x)
    if x.ndim < 2:
        raise TileValueError(f"transpose needs a tile of rank >= 2, got {x.shape}")
    a0 = x.ndim - 2 if axis0 is None else S.const_axis(axis0, x.ndim)
    a1 = x.ndim - 1 if axis1 is None else S.const_axis(axis1, x.ndim)
    perm = list(range(x.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    return permute(b, x, tuple(perm))


@builtin("broadcast_to")
def broadcast_to(b, x, shape):
    """Repeat size-1 (or missing leading) dimensions to `shape`."""
    return S.broadcast_to(b, S.as_tile(b, x), S.const_shape(shape))


@builtin("expand_dims")
def expand_dims(b, x, axis):
    """Insert a size-1 axis at `axis`."""
    x = S.require_tile(S.as_tile(b, x))
    axis = S.const_axis(axis, x.ndim + 1)
    return S.reshape(b, x, x.shape[:axis] + (1,) + x.shape[axis:])


@builtin("cat")
def cat(b, tiles, axis=0):
    """Concatenate a tuple of tiles along `axis`."""
    if not isinstance(tiles, (tuple, list)) or len(tiles) < 1:
        raise TileTypeError("cat takes a tuple of tiles")
    out = S.require_tile(tiles[0])
    axis = S.const_axis(axis, out.ndim)
    for t in tiles[1:]:
        t = S.require_tile(t)
        dt = D.promote(out.dtype, t.dtype)
        out, t = S.cast(b, out, dt), S.cast(b, t, dt)
        if t.ndim != out.ndim or any(s != u for i, (s, u) in enumerate(zip(t.shape, out.shape)) if i != axis):
            raise TileTypeError(f"cat: shapes {out.shape} and {t.shape} differ off axis {axis}")
        out = TileV(b.one("cat", [out.v, t.v], axis=axis))
    return out


@builtin("extract")
def extract(b, x, index, shape):
    """The sub-tile at `index` of x's tile space for `shape`; an index entry may be a runtime scalar."""
    x = S.require_tile(x)
    shape = S.const_shape(shape)
    index = index if isinstance(index, tuple) else (index,)
    if len(index) != x.ndim or len(shape) != x.ndim:
        raise TileValueError(f"extract needs {x.ndim} index entries and a shape of rank {x.ndim}")
    static, dynamic = [], []
    for i, s, n in zip(index, shape, x.shape):
        if s < 1 or s > n:
            raise TileValueError(f"extract shape {shape} does not fit in a tile of shape {x.shape}")
        if isinstance(i, TileV):
            if i.ndim or not i.dtype.is_int:
                raise TileTypeError(f"extract index entries must be integer scalars, got {describe(i)}")
            static.append(None)
            dynamic.append(i.v)
            continue
        if isinstance(i, bool) or not isinstance(i, int):
            raise TileTypeError(f"extract index entries must be ints or integer scalars, got {describe(i)}")
        if i < 0 or (i + 1) * s > n:
            raise TileValueError(f"extract index {index} with shape {shape} is outside a tile of shape {x.shape}")
        static.append(i)
    return TileV(b.one("extract", [x.v, *dynamic], index=tuple(static), shape=shape))


# ---- factories ----------------------------------------------------------------------------------

@builtin("full")
def full(b, shape, fill_value, dtype=None):
    """A tile of `shape` filled with `fill_value`."""
    shape = S.const_shape(shape)
    if isinstance(fill_value, TileV):
        dt = to_dtype(dtype) if dtype is not None else fill_value.dtype
        return S.broadcast_to(b, S.cast(b, S.reshape(b, fill_value, (1,) * fill_value.ndim) if fill_value.ndim
                                        else fill_value, dt), shape)
    dt = to_dtype(dtype) if dtype is not None else D.scalar_dtype(fill_value)
    return S.const(b, fill_value, dt, shape)


@builtin("zeros")
def zeros(b, shape, dtype=D.float32):
    return full(b, shape, 0, dtype)


@builtin("ones")
def ones(b, shape, dtype=D.float32):
    return full(b, shape, 1, dtype)


@builtin("arange")
def arange(b, size, *, dtype=D.int32, start=0, step=1):
    """start, start + step, ..., start + (size - 1) * step; start and step may be runtime scalars."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise TileTypeError(f"arange size must be a positive compile-time int, got {describe(size)}")
    dt = to_dtype(dtype)
    out = TileV(b.one("arange", n=size, dtype=dt))
    for fn, v, unit in (("mul", step, 1), ("add", start, 0)):
        if is_const(v) and not _is_number(v):
            raise TileTypeError(f"arange {'step' if fn == 'mul' else 'start'} must be a number or a scalar, "
                                f"got {describe(v)}")
        if is_const(v) and v == unit:
            continue
        v = S.as_tile(b, v)
        if v.ndim:
            raise TileTypeError(f"arange start and step must be scalars, got {describe(v)}")
        out = S.binary(b, fn, out, S.cast(b, v, dt))
    return out


# ---- debugging ----------------------------------------------------------------------------------

# One C conversion, as every backend's printf reads it (reference/interpreter.py's _PRINTF_SPEC).
_PRINTF_CONVERSION = re.compile(r"%[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?[diouxXeEfFgGcsv%]")


def _check_printf_format(fmt, nargs):
    """A format the backends would print wrongly (an unknown conversion, too few or too many values) is
    refused here, at the printf's line, rather than printed differently by each backend."""
    pos, used = 0, 0
    while (pos := fmt.find("%", pos)) >= 0:
        m = _PRINTF_CONVERSION.match(fmt, pos)
        if m is None:
            bad = fmt[pos:pos + 8]
            raise TileValueError(f"printf format {fmt!r} has an invalid conversion at {bad!r}; use %d %i %u %o %x "
                                 "%X %e %f %g %c %s or %v (any value) with optional flags, width and precision, "
                                 "and %% for a percent sign")
        used += not m.group().endswith("%")
        pos = m.end()
    if used != nargs:
        raise TileValueError(f"printf format {fmt!r} has {used} conversion{'s' if used != 1 else ''} but "
                             f"{nargs} value{'s were' if nargs != 1 else ' was'} given; give one value per "
                             "conversion (%% prints a percent sign)")


@builtin("printf")
def printf(b, fmt, *args):
    """C-style formatted print from each block (%d %f %s...)."""
    if not isinstance(fmt, str):
        raise TileTypeError("printf format must be a string literal")
    _check_printf_format(fmt, len(args))
    vals = [S.as_tile(b, a).v for a in args]
    b.emit("printf", vals, fmt=fmt)


@builtin("assert_")
def assert_(b, cond, msg=""):
    """Fail the launch with TileAssertionError if any element of cond is false."""
    if not isinstance(cond, TileV):
        if not cond:
            raise TileValueError(f"assertion is always false: {msg}")
        return
    c = S.to_bool(b, cond)
    if c.ndim:
        c = TileV(b.one("reduce", [S.cast(b, c, D.int32).v], fn="min", axes=tuple(range(c.ndim)), keepdims=False))
        c = S.to_bool(b, c)
    b.emit("assert", [c.v], msg=str(msg))


# ---- metaprogramming (cuTile names) --------------------------------------------------------------

def _static_iter_host(iterable):
    return iter(iterable)


@builtin("static_iter", host=_static_iter_host)
def static_iter(b, iterable):
    """`for x in tw.static_iter(seq)`: unroll the loop at compile time over a compile-time sequence."""
    if not is_const(iterable) or not hasattr(iterable, "__iter__"):
        raise TileTypeError(f"static_iter needs a compile-time iterable (range of constants, tuple...), "
                            f"got {describe(iterable)}")
    return tuple(iterable)


@builtin("static_assert")
def static_assert(b, cond, msg=""):
    """A compile-time assertion: the kernel fails to compile, naming this line, when cond is false."""
    if not is_const(cond):
        raise TileTypeError(f"static_assert needs a compile-time condition, got {describe(cond)}; "
                            "use tw.assert_ for runtime checks")
    if not cond:
        raise TileStaticAssertionError(f"static assertion failed: {msg}" if msg else "static assertion failed")


@builtin("ensure_constant")
def ensure_constant(b, x):
    """x itself, or a compile-time error when x is a runtime value."""
    if not is_const(x):
        raise TileTypeError(f"expected a compile-time constant, got {describe(x)}")
    return x


@builtin("static_eval")
def static_eval(b, expr):
    """Evaluate a Python expression at compile time (lowering.py handles the call: it needs the AST)."""
    return expr


@builtin("astile")
def astile(b, value, *, dtype):
    """A tile from a scalar (0-d) or a nested tuple of scalars whose nesting gives the shape."""
    dt = to_dtype(dtype)
    if not isinstance(value, (tuple, list)):
        return S.cast(b, S.as_tile(b, value), dt)

    def shape_of(v):
        if not isinstance(v, (tuple, list)):
            return ()
        if not v:
            raise TileValueError("astile: an empty tuple has no tile shape")
        inner = {shape_of(e) for e in v}
        if len(inner) != 1:
            raise TileValueError(f"astile: the tuples at one level must have one length and depth, got {value!r}")
        return (len(v),) + inner.pop()

    shape = shape_of(value)
    flat = list(_flatten(value))
    bad = next((e for e in flat if is_const(e) and not _is_number(e)), None)
    if bad is not None:
        raise TileTypeError(f"astile needs numbers or scalars, got {describe(bad)}")
    return _astile_elements(b, flat, shape, dt)


def _is_number(x):
    return is_py_scalar(x) or isinstance(x, np.generic)


def _flatten(v):
    for e in v:
        if isinstance(e, (tuple, list)):
            yield from _flatten(e)
        else:
            yield e


def _astile_elements(b, flat, shape, dt):
    """Each element as a (1,) tile, concatenated, then reshaped: no op of its own is needed."""
    parts = []
    for e in flat:
        t = S.cast(b, S.as_tile(b, e), dt)
        if t.ndim:
            raise TileTypeError(f"astile elements must be scalars, got {describe(t)}")
        parts.append(S.reshape(b, t, (1,)))
    out = parts[0] if len(parts) == 1 else cat(b, tuple(parts), 0)
    return S.reshape(b, out, shape)


# ---- grid dependency control (Blackwell programmatic dependent launch) ---------------------------

@builtin("grid_dependency_control_wait")
def grid_dependency_control_wait(b):
    """No-op: every tilewise launch starts after the work queued before it on its stream has finished, so
    the predecessor's memory is already visible (what the wait guarantees)."""


@builtin("grid_dependency_control_launch_dependents")
def grid_dependency_control_launch_dependents(b):
    """No-op: a scheduling hint that lets a dependent kernel start early; tilewise launches never overlap."""


# ---- valid cuTile that tilewise does not support yet ------------------------------------------------

def _not_yet(name, what):
    def impl(b, *args, **kwargs):
        raise TileUnsupportedError(f"valid cuTile, not supported by tilewise yet: {name} ({what})")
    impl.__doc__ = f"cuTile's {name}: {what}. Not supported by tilewise yet (TileUnsupportedError)."
    return builtin(name)(impl)


NOT_YET = {name: _not_yet(name, what) for name, what in {
    "insert": "a sub-tile written into a tile",
    "pack_to_bytes": "a tile's bytes as a uint8 tile",
    "unpack_from_bytes": "a uint8 tile's bytes as another dtype",
    "reduce": "a reduction with a user function",
    "scan": "a scan with a user function",
    "load_advanced_indexing": "a load with index tiles and ct.Slice entries",
    "store_advanced_indexing": "a store with index tiles and ct.Slice entries",
}.items()}


@builtin("print")
def print_(b, *args, sep=" ", end="\n"):
    """Python-style print from every block (lowering.py handles the call, as for the builtin print)."""
    raise AssertionError("lowering.py lowers print itself")


# ---- tile methods (x.reshape(...), x.astype(...), ...) -------------------------------------------

def _item(b, x):
    x = S.require_tile(x)
    if math.prod(x.shape) != 1:
        raise TileValueError(f"item() needs a single-element tile, got shape {x.shape}")
    return S.reshape(b, x, ())


TILE_METHODS = {"reshape": lambda b, x, *s: reshape(b, x, s[0] if len(s) == 1 else s),
                "permute": lambda b, x, *a: permute(b, x, a[0] if len(a) == 1 else a),
                "transpose": transpose, "astype": astype, "extract": extract, "item": _item,
                "sum": sum_, "max": max_, "min": min_, "prod": prod, "argmax": argmax, "argmin": argmin,
                "cumsum": cumsum, "broadcast_to": broadcast_to, "expand_dims": expand_dims,
                "bitcast": bitcast}


from . import memory  # noqa: E402,F401 - registers the memory functions in the same tables
