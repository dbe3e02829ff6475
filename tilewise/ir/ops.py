"""Every Tile IR op: its name, operands, attributes and type rule, one small entry each.

`infer(operand_types, attrs)` returns the result types; the builder uses it to type new ops and the
verifier re-runs it to check existing ones. Region-carrying ops (for, while, if) are typed by their
builder from the carried values and checked structurally by the verifier.
"""
from __future__ import annotations

from . import dtypes as D
from .types import ArrayType, TileType, scalar

UNARY_FLOAT = {"exp", "exp2", "log", "log2", "log10", "log1p", "expm1", "sqrt", "rsqrt", "sin", "cos",
               "tan", "tanh", "sinh", "cosh", "asin", "acos", "atan", "sigmoid", "erf"}
UNARY_NUMERIC = {"neg", "abs", "floor", "ceil", "trunc", "round"}
UNARY_INT = {"invert"}
UNARY_PRED = {"isnan", "isinf", "isfinite"}
UNARY = UNARY_FLOAT | UNARY_NUMERIC | UNARY_INT | UNARY_PRED
BINARY_ARITH = {"add", "sub", "mul", "floordiv", "mod", "pow", "minimum", "maximum"}
BINARY_FLOAT = {"truediv", "atan2"}
BINARY_INT = {"and", "or", "xor", "shl", "shr"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
BINARY = BINARY_ARITH | BINARY_FLOAT | BINARY_INT | COMPARE
REDUCE = {"sum", "prod", "max", "min", "argmax", "argmin"}
SCAN = {"cumsum", "cumprod"}
ATOMIC = {"add", "max", "min", "and", "or", "xor", "xchg", "cas"}
PADDING = {"undetermined", "zero", "neg_zero", "nan", "pos_inf", "neg_inf"}


class IRTypeError(Exception):
    """An op was built with operand types its rule rejects (a front-end or pass bug)."""


def check(cond, msg):
    if not cond:
        raise IRTypeError(msg)


def _tile(t):
    check(isinstance(t, TileType), f"expected a tile, got {t}")
    return t


def _array(t):
    check(isinstance(t, ArrayType), f"expected an array, got {t}")
    return t


def _index_scalars(ts):
    for t in ts:
        check(isinstance(t, TileType) and t.is_scalar and t.dtype.is_int, f"index must be an int scalar: {t}")


def _same(ts):
    check(len({(t.shape, t.dtype) for t in ts}) == 1, f"operands differ: {', '.join(map(str, ts))}")


OPS = {}


def op(name):
    def register(fn):
        OPS[name] = fn
        return fn
    return register


@op("constant")
def _constant(ts, a):
    check(isinstance(a["value"], (bool, int, float)), "constant value must be a Python scalar")
    return [TileType(tuple(a["shape"]), a["dtype"])]


@op("arange")
def _arange(ts, a):
    check(a["dtype"].is_int or a["dtype"].is_float, "arange needs a numeric dtype")
    return [TileType((a["n"],), a["dtype"])]


@op("bid")
def _bid(ts, a):
    check(a["axis"] in (0, 1, 2), "axis must be 0, 1 or 2")
    return [scalar(D.int32)]


OPS["num_blocks"] = _bid


@op("array_dim")
def _array_dim(ts, a):
    (arr,) = ts
    check(0 <= a["axis"] < _array(arr).ndim, "axis out of range")
    return [scalar(D.int32)]


@op("load")
def _load(ts, a):
    arr, *idx = ts
    _array(arr)
    check(len(idx) == arr.ndim == len(a["shape"]) == len(a["order"]), "load: rank mismatch")
    check(sorted(a["order"]) == list(range(arr.ndim)), "order must be a permutation")
    check(a["padding"] in PADDING, "unknown padding mode")
    _index_scalars(idx)
    return [TileType(tuple(a["shape"]), arr.dtype)]


@op("store")
def _store(ts, a):
    arr, *idx, tile = ts
    _array(arr)
    check(len(idx) == arr.ndim == len(a["order"]), "store: rank mismatch")
    _index_scalars(idx)
    check(_tile(tile).ndim == arr.ndim and tile.dtype is arr.dtype, f"store: tile {tile} into {arr}")
    return []


def _indexed(ts, a, n_values):
    """Operands of gather/scatter/atomics: array, one index tile per dim, values, optional mask."""
    arr, rest = _array(ts[0]), ts[1:]
    idx, vals, mask = rest[:arr.ndim], rest[arr.ndim:arr.ndim + n_values], rest[arr.ndim + n_values:]
    check(len(idx) == arr.ndim, "one index per array dimension")
    shape = idx[0].shape
    for t in idx:
        check(_tile(t).dtype.is_int and t.shape == shape, "indices must be int tiles of one shape")
    for t in vals:
        check(_tile(t).shape == shape and t.dtype is arr.dtype, f"value {t} must match {shape}/{arr.dtype}")
    check(len(mask) == int(a.get("masked", False)), "mask operand count")
    for t in mask:
        check(t.shape == shape and t.dtype is D.bool_, "mask must be a bool tile of the index shape")
    return arr, shape


@op("gather")
def _gather(ts, a):
    arr, shape = _indexed(ts, a, 0)
    return [TileType(shape, arr.dtype)]


@op("scatter")
def _scatter(ts, a):
    _indexed(ts, a, 1)
    return []


@op("atomic")
def _atomic(ts, a):
    check(a["kind"] in ATOMIC, f"unknown atomic {a['kind']}")
    arr, shape = _indexed(ts, a, 2 if a["kind"] == "cas" else 1)
    if a["kind"] in ("and", "or", "xor"):
        check(not arr.dtype.is_float, "bitwise atomics need an integer array")
    return [TileType(shape, arr.dtype)]


@op("unary")
def _unary(ts, a):
    (x,) = ts
    fn, dt = a["fn"], _tile(x).dtype
    check(fn in UNARY, f"unknown unary {fn}")
    if fn in UNARY_FLOAT:
        check(dt.is_float, f"{fn} needs a float tile, got {dt}")
    if fn in UNARY_INT:
        check(not dt.is_float, f"{fn} needs an integer or bool tile")
    if fn in UNARY_NUMERIC:
        check(not dt.is_bool, f"{fn} needs a numeric tile")
    return [TileType(x.shape, D.bool_ if fn in UNARY_PRED else dt)]


@op("binary")
def _binary(ts, a):
    x, y = ts
    _same([_tile(x), _tile(y)])
    fn, dt = a["fn"], x.dtype
    check(fn in BINARY, f"unknown binary {fn}")
    if fn in BINARY_FLOAT:
        check(dt.is_float, f"{fn} needs float operands")
    if fn in BINARY_INT:
        check(not dt.is_float, f"{fn} needs integer or bool operands")
        if fn in ("shl", "shr"):
            check(dt.is_int, f"{fn} needs integer operands")
    if fn in BINARY_ARITH - {"minimum", "maximum"}:
        check(not dt.is_bool, f"{fn} on bool operands")
    return [TileType(x.shape, D.bool_ if fn in COMPARE else dt)]


@op("where")
def _where(ts, a):
    c, x, y = ts
    _same([_tile(x), _tile(y)])
    check(_tile(c).shape == x.shape and c.dtype is D.bool_, "where: bool condition of the same shape")
    return [x]


@op("cast")
def _cast(ts, a):
    (x,) = ts
    return [TileType(_tile(x).shape, a["dtype"])]


@op("bitcast")
def _bitcast(ts, a):
    (x,) = ts
    check(_tile(x).dtype.bits == a["dtype"].bits, "bitcast needs dtypes of one width")
    return [TileType(x.shape, a["dtype"])]


@op("broadcast")
def _broadcast(ts, a):
    (x,) = ts
    shape = tuple(a["shape"])
    check(_tile(x).ndim == len(shape), "broadcast: rank must already match (reshape first)")
    check(all(s == d or s == 1 for s, d in zip(x.shape, shape)), f"cannot broadcast {x.shape} to {shape}")
    return [TileType(shape, x.dtype)]


@op("reshape")
def _reshape(ts, a):
    (x,) = ts
    shape = tuple(a["shape"])
    n = 1
    for s in shape:
        n *= s
    m = 1
    for s in _tile(x).shape:
        m *= s
    check(n == m, f"reshape {x.shape} -> {shape} changes the element count")
    return [TileType(shape, x.dtype)]


@op("permute")
def _permute(ts, a):
    (x,) = ts
    perm = tuple(a["perm"])
    check(sorted(perm) == list(range(_tile(x).ndim)), f"{perm} is not a permutation of {x.ndim} axes")
    return [TileType(tuple(x.shape[p] for p in perm), x.dtype)]


@op("reduce")
def _reduce(ts, a):
    (x,) = ts
    fn, axes = a["fn"], tuple(a["axes"])
    check(fn in REDUCE and all(0 <= ax < _tile(x).ndim for ax in axes), "reduce: bad fn or axis")
    shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape)) if a["keepdims"] else \
        tuple(s for i, s in enumerate(x.shape) if i not in axes)
    dt = D.int32 if fn in ("argmax", "argmin") else (D.int32 if x.dtype.is_bool else x.dtype)
    return [TileType(shape, dt)]


@op("scan")
def _scan(ts, a):
    (x,) = ts
    check(a["fn"] in SCAN and 0 <= a["axis"] < _tile(x).ndim, "scan: bad fn or axis")
    return [TileType(x.shape, D.int32 if x.dtype.is_bool else x.dtype)]


@op("matmul")
def _matmul(ts, a):
    x, y, *acc = ts
    check(_tile(x).ndim >= 2 and _tile(y).ndim >= 2 and x.ndim == y.ndim, "matmul: operands of rank >= 2, same rank")
    check(x.shape[:-2] == y.shape[:-2], "matmul: batch dimensions must match")
    check(x.shape[-1] == y.shape[-2], f"matmul: inner dimensions {x.shape} @ {y.shape}")
    check(x.dtype is y.dtype, "matmul: operand dtypes must match")
    shape = x.shape[:-1] + y.shape[-1:]
    if acc:
        check(_tile(acc[0]).shape == shape and acc[0].dtype is a["dtype"], "matmul: accumulator type")
    return [TileType(shape, a["dtype"])]


@op("cat")
def _cat(ts, a):
    x, y = ts
    ax = a["axis"]
    check(_tile(x).dtype is _tile(y).dtype and x.ndim == y.ndim and 0 <= ax < x.ndim, "cat: dtype/rank")
    check(all(s == t for i, (s, t) in enumerate(zip(x.shape, y.shape)) if i != ax), "cat: shapes")
    return [TileType(tuple(s + t if i == ax else s for i, (s, t) in enumerate(zip(x.shape, y.shape))), x.dtype)]


@op("extract")
def _extract(ts, a):
    # An index entry None is a run-time one: the next int scalar operand, clamped by the backends to the
    # last whole sub-tile (0 .. n // s - 1) so that no read leaves the tile.
    x, *dynamic = ts
    idx, shape = tuple(a["index"]), tuple(a["shape"])
    check(len(idx) == len(shape) == _tile(x).ndim, "extract: rank")
    check(sum(i is None for i in idx) == len(dynamic), "extract: one scalar operand per run-time index")
    _index_scalars(dynamic)
    check(all(1 <= s <= n for s, n in zip(shape, x.shape)), "extract: shape")
    check(all(i is None or (0 <= i * s and (i + 1) * s <= n) for i, s, n in zip(idx, shape, x.shape)),
          "extract: out of range")
    return [TileType(shape, x.dtype)]


@op("printf")
def _printf(ts, a):
    for t in ts:
        _tile(t)
    return []


@op("assert")
def _assert(ts, a):
    (c,) = ts
    check(_tile(c).dtype is D.bool_, "assert needs a bool")
    return []


@op("yield")
def _yield(ts, a):
    return []


OPS["return"] = _yield

# Structured control flow. Typed by construction; see verifier.py for their structural checks.
CONTROL_FLOW = {"for", "while", "if"}


def infer(name, operand_types, attrs):
    if name not in OPS:
        raise IRTypeError(f"unknown op {name}")
    return OPS[name](list(operand_types), attrs)
