"""Runs Tile IR with NumPy, all blocks of a chunk at once: every value has a leading block axis, and
divergent control flow runs under a per-block `active` mask (SIMT style), so the result equals
running each block alone."""
from __future__ import annotations

import re

import numpy as np

from ...errors import TileAssertionError, TileUnsupportedError
from ...ir import dtypes as D
from ...ir.types import ArrayType
from . import semantics as M
from . import tiles as T

# A chunk of blocks holds at most CHUNK_ELEMENTS / 4 elements per value: a few MiB, so temporaries come
# back from the heap instead of being mapped and page-faulted afresh, while per-op dispatch stays amortised.
CHUNK_ELEMENTS = 1 << 22


def _bcast(mask, ndim):
    return mask.reshape(mask.shape + (1,) * ndim)


def _select(mask, new, old):
    return np.where(_bcast(mask, new.ndim - 1), new, old)


class Frame:
    """The state of one chunk of blocks: values by id, block indices and the grid."""

    def __init__(self, bids, grid, n):
        self.values, self.bids, self.grid, self.n = {}, bids, grid, n


# ---- memory ---------------------------------------------------------------------------------------

def _tile_coords(arr_shape, idx, shape, order):
    """Per-block element coordinates of a tile in the array (in the permuted view) and a bounds mask."""
    view_shape = [arr_shape[o] for o in order]
    n = idx[0].shape[0] if idx else 1
    coords, ok = [], np.ones((n,) + tuple(shape), bool)
    for k, (ix, s) in enumerate(zip(idx, shape)):
        c = ix.astype(np.int64).reshape((n,) + (1,) * len(shape)) * s + \
            np.arange(s, dtype=np.int64).reshape((1,) * (k + 1) + (s,) + (1,) * (len(shape) - k - 1))
        c = np.broadcast_to(c, ok.shape)
        ok &= (c >= 0) & (c < view_shape[k])
        coords.append(c)
    return coords, ok


def _gather_view(view, coords, ok):
    if view.size == 0:
        return np.zeros(ok.shape, view.dtype)
    clipped = tuple(np.where(ok, c, 0) for c in coords)
    return view[clipped]


def _load_padded(view, idx, shape, padding, dt):
    coords, ok = _tile_coords(view.shape, idx, shape, range(view.ndim))
    vals = _gather_view(view, coords, ok)
    pad = M.padding_value(padding, dt)
    if not ok.all():
        vals = np.where(ok, vals, np.array(pad).astype(dt.np) if dt.is_float else np.array(pad, dt.np))
    return vals


def op_load(f, op, arr, *idx):
    a = op.attrs
    view = arr.transpose(a["order"])
    dt = op.result.type.dtype
    tiled, full = T.full_tiles(view, a["shape"], idx)
    if full is not None and full.all():
        return T.take(tiled, idx, copy=id(arr) not in f.unaliased)
    if full is None or not full.any():
        return _load_padded(view, idx, a["shape"], a["padding"], dt)
    vals = np.empty(full.shape + tuple(a["shape"]), dt.np)
    vals[full] = T.take(tiled, [i[full] for i in idx], copy=False)
    vals[~full] = _load_padded(view, [i[~full] for i in idx], a["shape"], a["padding"], dt)
    return vals


def op_store(f, op, arr, *rest):
    *idx, tile = rest
    order = op.attrs["order"]
    view = arr.transpose(order)
    active = f.mask
    tiled, full = T.full_tiles(view, tile.shape[1:], idx)
    if full is not None:
        full &= active
        if full.all():
            T.put(tiled, idx, tile)
            return
        if full.any():
            T.put(tiled, [i[full] for i in idx], tile[full])
            active = active & ~full
    if not active.all():
        idx, tile = [i[active] for i in idx], tile[active]
    coords, ok = _tile_coords(arr.shape, idx, tile.shape[1:], order)
    view[tuple(c[ok] for c in coords)] = tile[ok]


def _indexed(f, op, arr, operands, n_values):
    nd = arr.ndim
    idx, vals, mask = operands[:nd], operands[nd:nd + n_values], operands[nd + n_values:]
    ok = np.broadcast_to(_bcast(f.mask, idx[0].ndim - 1), idx[0].shape).copy()
    for k, i in enumerate(idx):
        ok &= (i >= 0) & (i < arr.shape[k])
    if mask:
        ok &= mask[0]
    return idx, vals, ok


def op_gather(f, op, arr, *operands):
    idx, _, ok = _indexed(f, op, arr, operands, 0)
    dt = op.result.type.dtype
    vals = _gather_view(arr, [i.astype(np.int64) for i in idx], ok)
    return np.where(ok, vals, M.cast(np.array(op.attrs["padding_value"]), D.float64 if isinstance(
        op.attrs["padding_value"], float) else D.int64, dt))


def op_scatter(f, op, arr, *operands):
    idx, (vals,), ok = _indexed(f, op, arr, operands, 1)
    arr[tuple(i[ok] for i in idx)] = vals[ok]


_ATOMIC_UFUNC = {"add": np.add, "max": np.maximum, "min": np.minimum, "and": np.bitwise_and,
                 "or": np.bitwise_or, "xor": np.bitwise_xor}


def op_atomic(f, op, arr, *operands):
    kind = op.attrs["kind"]
    idx, vals, ok = _indexed(f, op, arr, operands, 2 if kind == "cas" else 1)
    dt = op.result.type.dtype
    old = np.zeros(ok.shape, dt.np)
    pos = tuple(i[ok] for i in idx)
    if kind in _ATOMIC_UFUNC and not f.used[op.result.id] and dt not in M.NARROW:
        _ATOMIC_UFUNC[kind].at(arr, pos, vals[0][ok])  # block order, one pass
        return old
    # Sequential semantics in (block, element) order: each update sees the ones before it.
    flat_old = np.empty(int(ok.sum()), dt.np)
    v0 = vals[0][ok]
    v1 = vals[1][ok] if kind == "cas" else None
    for j, p in enumerate(zip(*pos)):
        cur = arr[p]
        flat_old[j] = cur
        if kind == "xchg":
            arr[p] = v0[j]
        elif kind == "cas":
            if cur == v0[j]:
                arr[p] = v1[j]
        else:
            arr[p] = M.binary({"max": "maximum", "min": "minimum"}.get(kind, kind),
                              np.array(cur), np.array(v0[j]), dt)
    old[ok] = flat_old
    return old


# ---- everything else ------------------------------------------------------------------------------

def op_constant(f, op):
    a = op.attrs
    return np.broadcast_to(np.array(a["value"], dtype=a["dtype"].np), (f.n,) + tuple(a["shape"]))


def op_reshape(f, op, x):
    return x.reshape((f.n,) + op.result.type.shape)


def op_extract(f, op, x, *dynamic):
    index, shape = op.attrs["index"], op.attrs["shape"]
    if not dynamic:
        return x[(slice(None),) + tuple(slice(i * s, (i + 1) * s) for i, s in zip(index, shape))]
    # Per-block starts: a run-time index is clamped to the last whole sub-tile (ir/ops.py).
    it, nd = iter(dynamic), len(shape)
    sel = [np.arange(x.shape[0]).reshape((-1,) + (1,) * nd)]
    for k, (i, s, n) in enumerate(zip(index, shape, x.shape[1:])):
        start = i * s if i is not None else np.clip(next(it).astype(np.int64), 0, n // s - 1) * s
        start = np.broadcast_to(np.asarray(start, np.int64), (x.shape[0],))
        sel.append(start.reshape((-1,) + (1,) * nd) + np.arange(s).reshape((1,) * (k + 1) + (s,) +
                                                                             (1,) * (nd - k - 1)))
    return x[tuple(sel)]


def _v(op):
    return op.operands[0].type


IMPL = {
    "constant": op_constant,
    "arange": lambda f, op: np.broadcast_to(np.arange(op.attrs["n"]).astype(op.attrs["dtype"].np),
                                            (f.n, op.attrs["n"])),
    "bid": lambda f, op: f.bids[op.attrs["axis"]],
    "num_blocks": lambda f, op: np.full(f.n, f.grid[op.attrs["axis"]], np.int32),
    "array_dim": lambda f, op, arr: np.full(f.n, arr.shape[op.attrs["axis"]], np.int32),
    "load": op_load, "store": op_store, "gather": op_gather, "scatter": op_scatter, "atomic": op_atomic,
    "unary": lambda f, op, x: M.unary(op.attrs["fn"], x, _v(op).dtype),
    "binary": lambda f, op, x, y: M.binary(op.attrs["fn"], x, y, _v(op).dtype),
    "where": lambda f, op, c, x, y: np.where(c, x, y),
    "cast": lambda f, op, x: M.cast(x, _v(op).dtype, op.attrs["dtype"]),
    "bitcast": lambda f, op, x: M.bitcast(x, op.attrs["dtype"]),
    "broadcast": lambda f, op, x: np.broadcast_to(x, (f.n,) + tuple(op.attrs["shape"])),
    "reshape": op_reshape,
    "permute": lambda f, op, x: x.transpose((0,) + tuple(p + 1 for p in op.attrs["perm"])),
    "reduce": lambda f, op, x: M.reduce(op.attrs["fn"], x, op.attrs["axes"], op.attrs["keepdims"], _v(op).dtype),
    "scan": lambda f, op, x: M.scan(op.attrs["fn"], x, op.attrs["axis"], _v(op).dtype),
    "matmul": lambda f, op, a, b, *acc: M.matmul(a, b, acc[0] if acc else None, _v(op).dtype, op.attrs["dtype"]),
    "cat": lambda f, op, x, y: np.concatenate([x, y], axis=op.attrs["axis"] + 1),
    "extract": lambda f, op, x, *dynamic: op_extract(f, op, x, *dynamic),
}

_PRINTF_SPEC = re.compile(r"%([-+ #0]*\d*(?:\.\d+)?)(hh|h|ll|l|z|j|t)?([diouxXeEfFgGcsv%])")


def _format(fmt, values, python):
    """Format one block's printf: C conversions on scalars, NumPy's repr for tiles."""
    it = iter(values)

    def sub(m):
        flags, _, conv = m.groups()
        if conv == "%":
            return "%"
        v = next(it)
        if v.ndim:
            return np.array2string(v.astype(np.float32) if v.dtype.kind == "V" or "bfloat" in str(v.dtype)
                                   or "float8" in str(v.dtype) else v, separator=", ")
        v = v.item() if hasattr(v, "item") else v
        if conv == "v":
            return format(v, flags) if flags else str(v)
        conv = {"u": "d", "i": "d"}.get(conv, conv)
        try:
            return ("%" + flags + conv) % (int(v) if conv in "dxXoc" else float(v) if conv in "eEfFgG" else v)
        except (TypeError, ValueError):
            return str(v)
    return _PRINTF_SPEC.sub(sub, fmt)


def run_block(f, block, args, mask):
    """Evaluate a block under `mask`; returns the operands of its terminator."""
    values = f.values
    for a, v in zip(block.args, args):
        values[a.id] = v
    saved, f.mask = getattr(f, "mask", None), mask
    op = None
    try:
        for op in block.ops:
            name = op.name
            ins = [values[o.id] for o in op.operands]
            if name in ("yield", "return"):
                return ins
            if name == "for":
                outs = _run_for(f, op, ins, mask)
            elif name == "while":
                outs = _run_while(f, op, ins, mask)
            elif name == "if":
                outs = _run_if(f, op, ins, mask)
            elif name == "printf":
                for blk in np.nonzero(mask)[0]:
                    print(_format(op.attrs["fmt"], [v[blk] for v in ins], op.attrs.get("python")), end="")
                outs = []
            elif name == "assert":
                bad = mask & ~ins[0].astype(bool)
                if bad.any():
                    blk = int(np.nonzero(bad)[0][0])
                    where = f" (block {tuple(int(b[blk]) for b in f.bids)})"
                    raise TileAssertionError(f"assertion failed{where}: {op.attrs['msg']}", op.loc)
                outs = []
            else:
                r = IMPL[name](f, op, *ins)
                outs = [] if r is None else [r]
            for res, v in zip(op.results, outs):
                values[res.id] = v
        return []
    except MemoryError:
        # The innermost block catches it, so `op` is the op whose values did not fit.
        raise _out_of_memory(f, op) from None
    finally:
        f.mask = saved


def _out_of_memory(f, op):
    tiles = [r.type for r in op.results if hasattr(r.type, "shape")] if op is not None else []
    big = max(tiles, key=lambda t: int(np.prod(t.shape, dtype=np.int64)) * t.dtype.itemsize, default=None)
    what = f" making {big} for {f.n} block{'s' if f.n > 1 else ''} at once" if big is not None else ""
    return TileUnsupportedError(
        f"the reference backend ran out of memory{what}; a tile may hold at most 2**24 elements, but this "
        "machine could not give the reference backend that much: use smaller tile shapes (more blocks, or "
        "a range() loop over pieces)", op.loc if op is not None else None)


def _trip_counts(lb, ub, step):
    lb, ub, step = (x.astype(np.int64) for x in (lb, ub, step))
    up = np.where(step > 0, (ub - lb + step - 1) // np.where(step > 0, step, 1), 0)
    down = np.where(step < 0, (lb - ub - step - 1) // np.where(step < 0, -step, 1), 0)
    return np.maximum(np.where(step > 0, up, down), 0)


def _run_for(f, op, ins, mask):
    lb, ub, step, *carried = ins
    trips = _trip_counts(lb, ub, step)
    n = int(trips[mask].max()) if mask.any() else 0
    (body,) = op.regions
    dt = lb.dtype
    for k in range(n):
        active = mask & (trips > k)
        iv = (lb.astype(np.int64) + k * step.astype(np.int64)).astype(dt)
        new = run_block(f, body, [iv] + carried, active)
        carried = [_select(active, nv, ov) for nv, ov in zip(new, carried)]
    return carried


def _run_while(f, op, ins, mask):
    cond_block, body = op.regions
    carried, active = list(ins), mask.copy()
    while True:
        (c,) = run_block(f, cond_block, carried, active)
        active = active & c.astype(bool)
        if not active.any():
            return carried
        new = run_block(f, body, carried, active)
        carried = [_select(active, nv, ov) for nv, ov in zip(new, carried)]


def _run_if(f, op, ins, mask):
    c = ins[0].astype(bool)
    then_mask, else_mask = mask & c, mask & ~c
    outs = {}
    for region, m in ((op.regions[0], then_mask), (op.regions[1], else_mask)):
        if m.any():
            outs[id(region)] = run_block(f, region, [], m)
    if not outs:
        return [np.zeros((f.n,) + r.type.shape, r.type.dtype.np) for r in op.results]
    t = outs.get(id(op.regions[0]))
    e = outs.get(id(op.regions[1]))
    if t is None or e is None:
        return t if e is None else e
    return [_select(c, tv, ev) for tv, ev in zip(t, e)]


def needs_sequential_blocks(fn) -> bool:
    """Blocks that spin on atomics (a lock in a while loop) would deadlock in lockstep: run them alone."""
    return any(op.name == "while" and any(o.name == "atomic" for r in op.regions for o in r.walk())
               for op in fn.walk())


def block_elements(fn) -> int:
    """An upper bound on the elements any one value of a block holds (sizes the chunks)."""
    biggest = 1
    for op in fn.walk():
        for r in op.results:
            if hasattr(r.type, "shape"):
                biggest = max(biggest, int(np.prod(r.type.shape, dtype=np.int64)))
    return biggest


def used_results(fn):
    used = {}
    for op in fn.walk():
        for r in op.results:
            used.setdefault(r.id, False)
        for v in op.operands:
            used[v.id] = True
    return used


def _unaliased_arrays(args, written):
    """ids of the array arguments that no store, scatter or atomic of the kernel can touch: loads from
    them may return views, since their contents cannot change while the kernel runs."""
    targets = [args[i] for i in written]
    return {id(a) for a in args if isinstance(a, np.ndarray)
            and not any(np.may_share_memory(a, w) for w in targets)}


class Plan:
    """What execution needs to know about a kernel, worked out once when it is compiled."""

    def __init__(self, fn):
        self.fn = fn
        self.used = used_results(fn)
        self.written = fn.written_params()
        self.sequential = needs_sequential_blocks(fn)
        self.chunk = 1 if self.sequential else max(1, CHUNK_ELEMENTS // (block_elements(fn) * 4))
        self.is_array = [isinstance(p.type, ArrayType) for p in fn.params]


def execute(plan, args, grid, chunk=None):
    """Run every block of `grid` over `args` (one host value per IR parameter)."""
    fn = plan.fn
    gx, gy, gz = grid
    total = gx * gy * gz
    chunk = chunk or plan.chunk
    unaliased = _unaliased_arrays(args, plan.written)
    with np.errstate(all="ignore"):
        for start in range(0, total, chunk):
            lin = np.arange(start, min(start + chunk, total), dtype=np.int64)
            bids = [(lin % gx).astype(np.int32), ((lin // gx) % gy).astype(np.int32),
                    (lin // (gx * gy)).astype(np.int32)]
            f = Frame(bids, grid, len(lin))
            f.used, f.unaliased = plan.used, unaliased
            vals = [a if is_array else np.full(len(lin), a, dtype=p.type.dtype.np)
                    for p, a, is_array in zip(fn.params, args, plan.is_array)]
            run_block(f, fn.body, vals, np.ones(len(lin), bool))
