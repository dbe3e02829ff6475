"""Bytes moved and FLOPs of one launch, counted exactly from the kernel's Tile IR and the launch's runtime
sizes (the rules are in docs/profiling.md).

The walk evaluates, for all blocks of a chunk of the grid at once (a leading block axis, as in the
reference interpreter), only the values that decide what is counted: tile indices of loads and stores,
index tiles and masks of gathers, scatters and atomics, loop bounds and branch conditions. Those are
computed on demand with the reference backend's element rules; values that depend on memory contents
are unknown. Each op is counted with a per-block weight: 0 for blocks that do not reach it, the number
of times they reach it otherwise (1, or more inside loops)."""
from __future__ import annotations

import threading
import weakref

import numpy as np

from ..backends.reference.interpreter import IMPL
from ..ir.types import ArrayType

LOOP_LIMIT = 4096        # iterations walked one by one; beyond, the body is counted once times its trips
CHUNK_ELEMENTS = 1 << 20  # blocks per chunk: about this many elements in the largest tile value
_PURE = {"constant", "arange", "bid", "num_blocks", "array_dim", "unary", "binary", "where", "cast",
         "bitcast", "broadcast", "reshape", "permute", "reduce", "scan", "matmul", "cat", "extract"}
_MISSING = object()


class Counts:
    __slots__ = ("bytes", "flops", "exact", "notes")

    def __init__(self):
        self.bytes, self.flops, self.exact, self.notes = 0, 0, True, set()

    def inexact(self, why):
        self.exact = False
        self.notes.add(why)

    def __repr__(self):
        return f"Counts(bytes={self.bytes}, flops={self.flops}, exact={self.exact})"


class _Shape:
    __slots__ = ("shape",)

    def __init__(self, shape):
        self.shape = shape


class _Chunk:
    """What the reference IMPL functions read from their frame: n, bids, grid."""

    def __init__(self, bids, grid):
        self.bids, self.grid, self.n = bids, grid, bids[0].shape[0]


def _size(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _full(shape, n):
    return [np.full(n, d, np.int64) for d in shape]


def _elements(box):
    per = 1
    for d in box:
        per = per * d
    return per


class _Walk:
    def __init__(self, fn, sizes, grid, chunk, counts):
        self.fn, self.grid, self.f, self.c = fn, grid, chunk, counts
        n = chunk.n
        self.arrays, root = {}, {}
        for p, v in zip(fn.params, sizes):
            if isinstance(p.type, ArrayType):
                self.arrays[p.id] = v
            else:
                root[p.id] = np.full(n, v, dtype=p.type.dtype.np)
        self.envs = [root]

    # ---- values ------------------------------------------------------------------------------
    def _lookup(self, vid):
        for d in range(len(self.envs) - 1, -1, -1):
            got = self.envs[d].get(vid, _MISSING)
            if got is not _MISSING:
                return got, d
        return _MISSING, 0

    def value(self, v):
        """The value of `v` for every block of the chunk, or None when it depends on memory contents
        (or on anything else this walk does not evaluate). Iterative: chains may be thousands long."""
        got, _ = self._lookup(v.id)
        if got is not _MISSING:
            return got
        stack = [v]
        while stack:
            x = stack[-1]
            if self._lookup(x.id)[0] is not _MISSING:
                stack.pop()
                continue
            op = x.op
            if op is None or op.name not in _PURE or isinstance(x.type, ArrayType):
                self.envs[0 if op is not None else -1][x.id] = None
                stack.pop()
                continue
            args, depth, pending = [], 0, []
            for o in op.operands:
                if isinstance(o.type, ArrayType):
                    args.append(_Shape(self.arrays.get(o.id, ())))  # array_dim reads only .shape
                    continue
                val, d = self._lookup(o.id)
                if val is _MISSING:
                    pending.append(o)
                else:
                    args.append(val)
                    depth = max(depth, d)
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if any(a is None for a in args):
                self.envs[depth][x.id] = None
                continue
            with np.errstate(all="ignore"):
                out = IMPL[op.name](self.f, op, *args)
            self.envs[depth][x.id] = out
        return self._lookup(v.id)[0]

    # ---- in-bounds boxes ---------------------------------------------------------------------
    # Each tile value has a box: per dimension, how many of its elements come from inside the arrays
    # (loads of partial tiles fill the rest with padding). FLOPs count only the box's elements, so a
    # padded tile's padding is no work; the rules per op are in docs/profiling.md.
    def box(self, v):
        got, _ = self._lookup(("box", v.id))
        return _full(v.type.shape, self.f.n) if got is _MISSING or got is None else got

    def _set_box(self, v, box):
        self.envs[-1][("box", v.id)] = box

    def _result_box(self, op):
        name, res = op.name, op.results[0]
        shape = tuple(res.type.shape)
        if name in ("unary", "cast", "bitcast", "scan"):
            return self.box(op.operands[0])
        if name in ("binary", "where"):
            boxes = [self.box(o) for o in op.operands[-2:]]
            return [np.minimum(a, b) for a, b in zip(*boxes)]
        if name == "broadcast":
            src = op.operands[0].type.shape
            return [np.where(b > 0, d, 0) if s == 1 and d != 1 else b
                    for b, s, d in zip(self.box(op.operands[0]), src, shape)]
        if name == "reshape":
            src = [(b, s) for b, s in zip(self.box(op.operands[0]), op.operands[0].type.shape) if s != 1]
            if [s for _, s in src] == [d for d in shape if d != 1]:  # only unit dimensions come or go
                it = iter(b for b, _ in src)
                n = self.f.n
                return [next(it) if d != 1 else np.ones(n, np.int64) for d in shape]
            return None
        if name == "permute":
            box = self.box(op.operands[0])
            return [box[p] for p in op.attrs["perm"]]
        if name == "reduce":
            box, axes = self.box(op.operands[0]), op.attrs["axes"]
            if op.attrs["keepdims"]:
                return [np.minimum(b, 1) if i in axes else b for i, b in enumerate(box)]
            return [b for i, b in enumerate(box) if i not in axes]
        if name == "matmul":
            a, b = self.box(op.operands[0]), self.box(op.operands[1])
            return [np.minimum(x, y) for x, y in zip(a[:-2], b[:-2])] + [a[-2], b[-1]]
        if name == "extract":
            box = self.box(op.operands[0])
            # a runtime index (None) is unknown here: count the sub-tile as far as the tile's box reaches
            return [np.minimum(b, s) if i is None else np.clip(b - i * s, 0, s)
                    for b, i, s in zip(box, op.attrs["index"], op.attrs["shape"])]
        return None

    # ---- counting ----------------------------------------------------------------------------
    def block(self, block, w):
        for op in block.ops:
            handler = getattr(self, "op_" + op.name, None)
            if handler is not None:
                handler(op, w)
            elif op.name in ("unary", "binary"):
                if op.operands[0].type.dtype.is_float:
                    self.c.flops += int((_elements(self._result_box(op)) * w).sum())
            if op.results and op.name not in ("load", "for", "while", "if") and op.results[0].type.shape:
                self._set_box(op.results[0], self._result_box(op))

    def _shape_of(self, arr):
        return self.arrays[arr.id]

    def _tile_in_bounds(self, op, idx_vals, tile_shape, w):
        order = op.attrs["order"]
        shape = self._shape_of(op.operands[0])
        if any(i is None for i in idx_vals):
            self.c.inexact("a tile index depends on memory contents: counted as a whole tile")
            return _size(tile_shape) * int(w.sum())
        box = []
        for k, (ix, s) in enumerate(zip(idx_vals, tile_shape)):
            lo = ix.astype(np.int64) * s
            box.append(np.clip(np.minimum(lo + s, shape[order[k]]) - np.maximum(lo, 0), 0, s))
        self._last_box = box
        return int((_elements(box) * w).sum())

    def op_load(self, op, w):
        arr, *idx = op.operands
        self._last_box = None
        n = self._tile_in_bounds(op, [self.value(i) for i in idx], op.attrs["shape"], w)
        self.c.bytes += n * arr.type.dtype.np.itemsize
        self._set_box(op.results[0], self._last_box)

    def op_store(self, op, w):
        arr, *idx, tile = op.operands
        n = self._tile_in_bounds(op, [self.value(i) for i in idx], tile.type.shape, w)
        self.c.bytes += n * arr.type.dtype.np.itemsize

    def _indexed(self, op, n_values, w):
        arr = op.operands[0]
        nd = arr.type.ndim
        idx = op.operands[1:1 + nd]
        mask = op.operands[1 + nd + n_values:]
        vals = [self.value(i) for i in idx] + [self.value(m) for m in mask]
        if any(v is None for v in vals):
            self.c.inexact(f"a {op.name}'s indices or mask depend on memory contents: counted as all in bounds")
            return _size(idx[0].type.shape) * int(w.sum())
        shape = self._shape_of(arr)
        ok = np.ones((self.f.n,) + tuple(idx[0].type.shape), bool)
        for k in range(nd):
            ok &= (vals[k] >= 0) & (vals[k] < shape[k])
        if mask:
            ok &= vals[nd].astype(bool)
        return int((ok.reshape(self.f.n, -1).sum(1) * w).sum())

    def op_gather(self, op, w):
        self.c.bytes += self._indexed(op, 0, w) * op.operands[0].type.dtype.np.itemsize

    def op_scatter(self, op, w):
        self.c.bytes += self._indexed(op, 1, w) * op.operands[0].type.dtype.np.itemsize

    def op_atomic(self, op, w):
        kind = op.attrs["kind"]
        n = self._indexed(op, 2 if kind == "cas" else 1, w)
        dt = op.operands[0].type.dtype
        self.c.bytes += 2 * n * dt.np.itemsize  # read-modify-write
        if dt.is_float and kind in ("add", "max", "min"):
            self.c.flops += n

    def op_reduce(self, op, w):
        x = op.operands[0]
        if x.type.dtype.is_float:
            box = self.box(x)
            n_in = _elements(box)
            n_out = _elements([b for i, b in enumerate(box) if i not in op.attrs["axes"]])
            self.c.flops += int((np.maximum(n_in - n_out, 0) * w).sum())

    def op_scan(self, op, w):
        x = op.operands[0]
        if x.type.dtype.is_float and x.type.shape:
            box = self.box(x)
            rows = _elements([b for i, b in enumerate(box) if i != op.attrs["axis"]])
            self.c.flops += int((np.maximum(_elements(box) - rows, 0) * w).sum())

    def op_matmul(self, op, w):
        a, b = self.box(op.operands[0]), self.box(op.operands[1])
        batch = _elements([np.minimum(x, y) for x, y in zip(a[:-2], b[:-2])])
        self.c.flops += int((2 * batch * a[-2] * np.minimum(a[-1], b[-2]) * b[-1] * w).sum())

    # ---- control flow ------------------------------------------------------------------------
    def _scalar(self, v):
        return self.value(v) if v.type.shape == () else None

    def _bind(self, env, args, vals):
        for a, v in zip(args, vals):
            env[a.id] = v

    def op_for(self, op, w):
        lb, ub, step, *inits = op.operands
        body = op.regions[0]
        bounds = [self.value(x) for x in (lb, ub, step)]
        carried = [self._scalar(x) for x in inits]
        if any(b is None for b in bounds):
            self.c.inexact("a for loop's bounds depend on memory contents: its body is counted once")
            self._once(body, [None] * len(body.args), w)
            return self._results(op, [None] * len(inits))
        lo, hi, st = (b.astype(np.int64) for b in bounds)
        st = np.where(st == 0, 1, st)
        trips = np.where(st > 0, -((lo - hi) // st), -((hi - lo) // -st)).clip(0)
        trips = np.where(w > 0, trips, 0)
        total = int(trips.max()) if trips.size else 0
        if total > LOOP_LIMIT:
            self.c.inexact(f"a loop of more than {LOOP_LIMIT} iterations: its body counted once times its trips")
            self._once(body, [None] * len(body.args), w * trips)
            return self._results(op, [None] * len(inits))
        for t in range(total):
            live = t < trips
            env = {}
            self._bind(env, body.args, [lo + t * st, *carried])
            self.envs.append(env)
            self.block(body, w * live)
            nxt = [self._scalar(y) if c is not None else None for y, c in zip(body.ops[-1].operands, carried)]
            self.envs.pop()
            carried = [None if n is None else np.where(live, n, c) for n, c in zip(nxt, carried)]
        self._results(op, carried)

    def _once(self, block, args, w):
        env = {}
        self._bind(env, block.args, args)
        self.envs.append(env)
        self.block(block, w)
        self.envs.pop()

    def _results(self, op, vals):
        self._bind(self.envs[-1], op.results, vals)

    def op_while(self, op, w):
        cond, body = op.regions
        carried = [self._scalar(x) for x in op.operands]
        for _ in range(LOOP_LIMIT):
            if not w.any():
                return self._results(op, carried)
            env = {}
            self._bind(env, cond.args, carried)
            self.envs.append(env)
            self.block(cond, w)
            c = self.value(cond.ops[-1].operands[0])
            passed = cond.ops[-1].operands[1:]  # values the condition hands to the body, if any
            nxt_in = [self._scalar(p) for p in passed] if passed else carried
            self.envs.pop()
            if c is None:
                self.c.inexact("a while loop's condition depends on memory contents: its body is counted once")
                self._once(body, [None] * len(body.args), w)
                return self._results(op, [None] * len(op.results))
            w = w * c.astype(bool)
            env = {}
            self._bind(env, body.args, nxt_in)
            self.envs.append(env)
            self.block(body, w)
            nxt = [self._scalar(y) if c0 is not None else None for y, c0 in zip(body.ops[-1].operands, carried)]
            self.envs.pop()
            carried = [None if n is None else np.where(w > 0, n, c0) for n, c0 in zip(nxt, carried)]
        if w.any():
            self.c.inexact(f"a while loop ran more than {LOOP_LIMIT} iterations: the rest is not counted")
        self._results(op, [None] * len(op.results))

    def op_if(self, op, w):
        then, other = op.regions
        c = self.value(op.operands[0])
        if c is None:
            self.c.inexact("a branch condition depends on memory contents: both branches counted")
            self._once(then, [], w)
            self._once(other, [], w)
            return self._results(op, [None] * len(op.results))
        c = c.astype(bool)
        outs = []
        for region, wr in ((then, w * c), (other, w * ~c)):
            env = {}
            self.envs.append(env)
            self.block(region, wr)
            outs.append([self._scalar(y) for y in region.ops[-1].operands])
            self.envs.pop()
        self._results(op, [None if a is None or b is None else np.where(c, a, b) for a, b in zip(*outs)])


def _biggest_tile(fn):
    return max([_size(getattr(r.type, "shape", ())) for op in fn.walk() for r in op.results] + [1])


def sizes_of(fn, values):
    """What decides the counts: each array parameter's shape and each scalar's value."""
    return tuple(tuple(v.shape) if isinstance(p.type, ArrayType) else v for p, v in zip(fn.params, values))


def count(fn, sizes, grid) -> Counts:
    """Bytes and FLOPs of `fn` run over `grid` (a 3-tuple) with `sizes` (`sizes_of`: one entry per IR
    parameter, a shape for an array and the value for a scalar)."""
    counts = Counts()
    total = grid[0] * grid[1] * grid[2]
    step = max(1, CHUNK_ELEMENTS // _biggest_tile(fn))
    for start in range(0, total, step):
        lin = np.arange(start, min(total, start + step), dtype=np.int64)
        bids = tuple((x % g).astype(np.int32) for x, g in
                     ((lin, grid[0]), (lin // grid[0], grid[1]), (lin // (grid[0] * grid[1]), grid[2])))
        walk = _Walk(fn, sizes, grid, _Chunk(bids, grid), counts)
        walk.block(fn.body, np.ones(len(lin), np.int64))
    return counts


_memo = weakref.WeakKeyDictionary()  # fn -> {(sizes, grid): Counts}
_memo_lock = threading.Lock()


def count_cached(fn, sizes, grid) -> Counts:
    """`count`, once per function, sizes and grid."""
    with _memo_lock:
        per_fn = _memo.setdefault(fn, {})
        got = per_fn.get((sizes, grid))
    if got is None:
        got = count(fn, sizes, grid)
        with _memo_lock:
            per_fn[(sizes, grid)] = got
    return got
