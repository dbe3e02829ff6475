"""The static analyzer: findings about a typed kernel (Tile IR) and what its backend reported.

`lint(fn, target, resources, arrays)` runs every pass and returns `Finding`s sorted by place. The passes
see the IR (ops carry `loc`; array types their dtype, rank and `unit_stride`), the backend's `resources`
dict as the caller passes it (registers, spills, occupancy on CUDA; vector bytes on the CPU) and, where
the caller knows them, the arguments (`arrays`: per parameter, `(shape, strides in elements)` of an
array, the int value of an integer scalar, or None). Every pass prefers silence to a guess: it
reports only what the facts it has show.
"""
from __future__ import annotations

import math

from .core import Function
from .findings import Finding, finding
from .padding import undetermined_padding
from .ranges import Ranges
from .types import ArrayType, TileType

# Below this share of an SM's warp slots a memory-bound kernel cannot hide latency (a quarter is where
# NVIDIA's tuning guides start to worry).
LOW_OCCUPANCY = 0.25


def lint(fn: Function, target: str = "", resources: dict | None = None, arrays=None) -> list[Finding]:
    ctx = _Context(fn, target or "", resources or {}, arrays)
    ranges = Ranges(fn, ctx.scalars, ctx.extent)
    found = [*coalescing(ctx), *undetermined_padding(fn, ctx.extent, ranges), *atomics_in_loops(fn),
             *duplicate_loads(fn)]
    if ctx.target == "cpu":
        found += small_tiles(ctx)
    if ctx.target.startswith("cuda"):
        found += cuda_resources(ctx)
    unique = dict.fromkeys(found)  # a pass may reach one op twice (a loop walked to its fixed point)
    return sorted(unique, key=lambda f: (f.file, f.line, f.col, f.code))


class _Context:
    def __init__(self, fn, target, resources, arrays):
        self.fn, self.target, self.resources = fn, target, resources
        self.param = {p.id: i for i, p in enumerate(fn.params)}
        facts = list(arrays) if arrays is not None else []
        self.arrays = [f if isinstance(f, tuple) else None for f in facts]
        self.scalars = {i: f for i, f in enumerate(facts) if isinstance(f, int)}

    def array_info(self, value):
        """(shape, strides in elements) of the array parameter `value`, or None where not known."""
        i = self.param.get(value.id)
        return self.arrays[i] if i is not None and i < len(self.arrays) else None

    def extent(self, array, axis):
        """The array's extent along `axis`: an int where known, else a key that equals only itself."""
        info = self.array_info(array)
        return info[0][axis] if info else ("extent", array.id, axis)

    def unit_axes(self, array):
        """The axes along which neighbours are one element apart, or None where not known."""
        info = self.array_info(array)
        if info:
            shape, strides = info
            return {a for a in range(len(shape)) if strides[a] == 1 and shape[a] > 1}
        t = array.type
        return {t.ndim - 1} if t.unit_stride else None


def _name(v):
    return f"'{v.name}'" if v.name else "the array"


def _memory_tile(op):
    """(array, tile shape, order) of a load or store."""
    shape = op.attrs["shape"] if op.name == "load" else op.operands[-1].type.shape
    return op.operands[0], tuple(shape), tuple(op.attrs["order"])


def _memory_ops(fn):
    return [op for op in fn.walk() if op.name in ("load", "store") and isinstance(op.operands[0].type, ArrayType)]


# ---- the passes -----------------------------------------------------------------------------------

def coalescing(ctx):
    """A load or store whose fastest-moving tile dimension (the last one longer than 1) walks an array
    axis whose neighbours are not adjacent in memory, while another axis's are."""
    on_gpu = ctx.target.startswith("cuda")
    for op in _memory_ops(ctx.fn):
        array, shape, order = _memory_tile(op)
        inner = [k for k, s in enumerate(shape) if s > 1]
        units = ctx.unit_axes(array)
        if not inner or not units:
            continue
        axis = order[inner[-1]]
        if axis in units:
            continue
        unit = max(units)
        why = ("consecutive threads touch addresses a whole row apart, so each warp's access is split into "
               "many memory transactions" if on_gpu else
               "the CPU cannot use vector loads and stores for it" if ctx.target == "cpu" else
               "uncoalesced on a GPU, no vector loads on a CPU")
        verb = "load from" if op.name == "load" else "store to"
        yield finding(
            "uncoalesced-access", "warning",
            f"{verb} {_name(array)}: the tile's fastest-moving dimension ({inner[-1]}, {shape[inner[-1]]} elements) "
            f"walks axis {axis}, which is not the array's unit-stride axis ({unit}); {why}. Make the tile's "
            f"last dimension run along axis {unit} (and permute the tile afterwards), or lay the array out so "
            f"axis {axis} is contiguous", op.loc)


def atomics_in_loops(fn):
    """Atomics issued on every trip of a loop: each one is a round trip to memory that serialises with
    every other block's on the same address."""
    def walk(block, loop):
        for op in block.ops:
            if op.name == "atomic" and loop is not None:
                yield finding(
                    "atomic-in-loop", "warning",
                    f"atomic_{op.attrs['kind']} inside the loop at line {loop.loc[1] if loop.loc else '?'}: every "
                    "trip issues atomics that serialise on their addresses; accumulate in a tile inside the "
                    "loop and issue one atomic after it", op.loc)
            for region in op.regions:
                yield from walk(region, op if op.name in ("for", "while") else loop)
    return list(walk(fn.body, None))


_WRITES = ("store", "scatter", "atomic")


def _writes(op):
    return op.name in _WRITES or any(o.name in _WRITES for r in op.regions for o in r.walk())


def duplicate_loads(fn):
    """A load of the tile an earlier load already read (same array, indices, shape, order, padding) with
    no write to memory in between: the second costs memory traffic for a value already in hand. Loads in
    a branch are not seen after it; a loop that writes starts with nothing seen."""
    out = []

    def walk(block, seen):
        for op in block.ops:
            if op.name == "load":
                key = (*(v.id for v in op.operands), tuple(op.attrs["shape"]), tuple(op.attrs["order"]),
                       op.attrs["padding"])
                first = seen.get(key)
                if first is not None:
                    out.append(finding(
                        "duplicate-load", "warning",
                        f"this load reads the same tile of {_name(op.operands[0])} as the load at line "
                        f"{first.loc[1] if first.loc else '?'}, and nothing is written in between; reuse that "
                        "tile instead of loading it again", op.loc))
                else:
                    seen[key] = op
            for region in op.regions:
                loops = op.name in ("for", "while")
                walk(region, {} if loops and _writes(op) else dict(seen))
            if _writes(op):
                seen.clear()

    walk(fn.body, {})
    return out


def _in_loops(fn):
    """The ids of the ops inside a for or while body."""
    inside = set()

    def walk(block, looped):
        for op in block.ops:
            if looped:
                inside.add(id(op))
            for region in op.regions:
                walk(region, looped or op.name in ("for", "while"))
    walk(fn.body, False)
    return inside


def small_tiles(ctx):
    """On the CPU: loads and stores of tiles smaller than one vector register, where they are the work:
    inside a loop, or in a kernel whose tiles are all that small. (A reduction's short result stored once
    per block costs nothing; single elements are scalars on purpose.)"""
    vector = ctx.resources.get("vector_bytes")
    if not vector:
        return
    tiles = [v.type for op in ctx.fn.walk() for v in op.results if isinstance(v.type, TileType)]
    all_small = max((math.prod(t.shape) * t.dtype.itemsize for t in tiles), default=0) < vector
    looped = _in_loops(ctx.fn)
    for op in _memory_ops(ctx.fn):
        array, shape, _ = _memory_tile(op)
        n = math.prod(shape)
        nbytes = n * array.type.dtype.itemsize
        if 1 < n and nbytes < vector and (all_small or id(op) in looped):
            lanes = vector // array.type.dtype.itemsize
            where = "on every trip of its loop" if id(op) in looped else "and the kernel has no larger tile"
            yield finding(
                "small-tile", "warning",
                f"{'load from' if op.name == 'load' else 'store to'} {_name(array)} moves a tile of {n} "
                f"{array.type.dtype.name} elements ({nbytes} bytes) {where}, less than one {vector}-byte vector "
                f"({lanes} lanes) of this CPU; tiles of at least {lanes} elements fill the vector lanes", op.loc)


def _largest_tile_op(fn):
    ops = [op for op in fn.walk() if op.results and isinstance(op.results[0].type, TileType) and op.loc]
    return max(ops, key=lambda op: math.prod(op.results[0].type.shape) * op.results[0].type.dtype.itemsize,
               default=None)


def _first_loc(fn):
    return next((op.loc for op in fn.walk() if op.loc), None)


def cuda_resources(ctx):
    """Spills and occupancy, from what ptxas and the occupancy table reported (resources dict)."""
    r, fn = ctx.resources, ctx.fn
    big = _largest_tile_op(fn)
    spills = r.get("spill_store_bytes", 0) + r.get("spill_load_bytes", 0)
    if spills:
        what = f"; the largest tile is {big.results[0].type}, made here" if big else ""
        yield finding(
            "register-spill", "warning",
            f"kernel '{fn.name}' spills registers on {r.get('arch', 'this GPU')} ({r.get('spill_store_bytes', 0)} "
            f"bytes stored, {r.get('spill_load_bytes', 0)} loaded per thread, {r.get('registers', '?')} registers "
            f"used){what}: its tiles do not fit in registers; use smaller tiles", big.loc if big else _first_loc(fn))
    occ = r.get("occupancy")
    if occ is not None and occ < LOW_OCCUPANCY:
        limit = r.get("occupancy_limit", "?")
        detail = {"shared memory": f"{r.get('shared_bytes', 0)} bytes of shared memory per CTA",
                  "registers": f"{r.get('registers', '?')} registers per thread",
                  "warps": f"{r.get('threads_per_cta', '?')} threads per CTA"}.get(limit, limit)
        at = big.loc if big and limit in ("shared memory", "registers") else _first_loc(fn)
        yield finding(
            "low-occupancy", "warning",
            f"kernel '{fn.name}' keeps {r.get('max_ctas_per_sm', '?')} CTA(s) per SM on {r.get('arch', 'this GPU')}, "
            f"{occ:.0%} of its warp slots, limited by {detail}; with so few warps the SM cannot hide memory "
            "latency: use smaller tiles", at)
