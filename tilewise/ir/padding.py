"""The analyzer's data-flow pass for UNDETERMINED padding: which stores write values that depend on the
padding of a load that reaches past its array (a load's default padding is undetermined: a backend may
leave anything there).

Every tile value gets a taint: per tile dimension, the loads whose padding may sit at the end of that
dimension (`Source`: the load, the array's extent along the axis it walks, the tile size, the index
operand), and `mixed`: loads whose padding has been combined with in-bounds elements (a reduction or a
matmul over a padded dimension, a reshape that moves elements between rows). Padding that stays where
the load put it is harmless when the store drops it: a store at the same index and tile size into an
array no longer than the loaded one along that dimension writes none of it, which is how a partial
vector add or layer norm with default padding is correct. So a store is reported when its tile is
mixed, or when a padded dimension is stored elsewhere (another index, another size, a longer array).
`where(mask, x, y)` with a mask computed from `arange` (the usual `cols < n`) is taken to mask the
padding off. Scatters and atomics are reported when their indices (not masked) may be padding."""
from __future__ import annotations

from dataclasses import dataclass

from .findings import finding
from .types import TileType

_ELEMENTWISE = ("unary", "binary", "cast", "bitcast")


@dataclass(frozen=True)
class Source:
    load: object      # the load op
    axis: int
    extent: object    # int where the shapes are known, else a key equal only to itself
    size: int
    index: int        # the id of the index operand of this tile dimension


@dataclass(frozen=True)
class Taint:
    dims: tuple               # per tile dimension, a frozenset of Sources
    mixed: frozenset = frozenset()  # (Source, the op that mixed it in)

    def union(self, other):
        if other is None:
            return self
        dims = tuple(a | b for a, b in zip(self.dims, other.dims)) if len(self.dims) == len(other.dims) else \
            tuple(frozenset() for _ in self.dims)
        mixed = self.mixed | other.mixed
        if len(self.dims) != len(other.dims):
            mixed |= {(s, None) for d in (*self.dims, *other.dims) for s in d}
        return _make(dims, mixed)

    def mix(self, op, dims=None):
        """All of it mixed in by `op`; the result has `dims` (by default this taint's rank) clean."""
        spread = frozenset((s, op) for d in self.dims for s in d)
        n = len(self.dims) if dims is None else dims
        return _make((frozenset(),) * n, self.mixed | spread)


def _make(dims, mixed=frozenset()):
    dims = tuple(dims)
    return Taint(dims, frozenset(mixed)) if mixed or any(dims) else None


def _union(taints):
    out = None
    for t in taints:
        if t is not None:
            out = t if out is None else out.union(t)
    return out


def _rank(v):
    return v.type.ndim if isinstance(v.type, TileType) else 0


def _nonunit(shape):
    return [k for k, s in enumerate(shape) if s != 1]


class _Flow:
    def __init__(self, extent, ranges):
        self.extent, self.ranges, self.taint, self.findings, self.masks = extent, ranges, {}, [], {}

    def get(self, v):
        return self.taint.get(v.id)

    def set(self, v, t):
        if t is None:
            self.taint.pop(v.id, None)
        else:
            self.taint[v.id] = t

    def is_mask(self, v, depth=0):
        """A clean value computed from an `arange` (the usual bounds mask)."""
        if v.id in self.masks:
            return self.masks[v.id]
        op = v.op
        found = op is not None and depth < 64 and self.get(v) is None and (
            op.name == "arange" or any(self.is_mask(o, depth + 1) for o in op.operands))
        self.masks[v.id] = found
        return found

    # ---- blocks and control flow ----

    def block(self, block):
        for op in block.ops:
            if op.name == "for":
                self.loop(op, op.operands[3:], op.regions[0], op.regions[0].args[1:], [op.regions[0]])
            elif op.name == "while":
                cond, body = op.regions
                self.loop(op, op.operands, body, body.args, [cond, body], extra_args=cond.args)
            elif op.name == "if":
                for region in op.regions:
                    self.block(region)
                for i, r in enumerate(op.results):
                    self.set(r, _union(self.get(region.ops[-1].operands[i]) for region in op.regions))
            else:
                self.op(op)

    def loop(self, op, inits, body, args, regions, extra_args=()):
        """Carried values start from their inits and take what each trip yields, to a fixed point."""
        carried = [self.get(v) for v in inits]
        for _ in range(8):
            for a, t in zip(args, carried):
                self.set(a, t)
            for a, t in zip(extra_args, carried):
                self.set(a, t)
            for region in regions:
                self.block(region)
            yielded = [self.get(v) for v in body.ops[-1].operands]
            new = [_union([c, y]) for c, y in zip(carried, yielded)]
            if new == carried:
                break
            carried = new
        for r, t in zip(op.results, carried):
            self.set(r, t)

    # ---- single ops ----

    def op(self, op):
        name, ins = op.name, op.operands
        t = [self.get(v) for v in ins]
        if name == "load":
            self.set(op.result, self.load(op))
        elif name == "store":
            self.store(op, t[-1])
        elif name in ("scatter", "atomic"):
            self.indexed(op, t)
        elif name == "gather":
            nd = ins[0].type.ndim
            self.set(op.result, _union(t[1:1 + nd]))
        elif name in _ELEMENTWISE:
            self.set(op.result, _union(t))
        elif name == "where":
            cond, x, y = ins
            if self.is_mask(cond):
                kept = [tt for tt in t[1:] if tt is not None and tt.mixed]
                self.set(op.result, _make((frozenset(),) * _rank(x), frozenset().union(*(k.mixed for k in kept))))
            else:
                self.set(op.result, _union(t))
        elif name == "broadcast" and t[0] is not None:
            grown = any(a != b and d for a, b, d in zip(ins[0].type.shape, op.attrs["shape"], t[0].dims))
            self.set(op.result, t[0].mix(op) if grown else t[0])
        elif name == "reshape" and t[0] is not None:
            self.set(op.result, self.reshape(op, t[0]))
        elif name == "permute" and t[0] is not None:
            self.set(op.result, _make([t[0].dims[p] for p in op.attrs["perm"]], t[0].mixed))
        elif name == "reduce" and t[0] is not None:
            self.set(op.result, self.reduce(op, t[0]))
        elif name == "scan" and t[0] is not None:
            # padding sits at the end of the axis: a forward scan carries it only into padded positions
            reverse = op.attrs.get("reverse", False)
            self.set(op.result, t[0].mix(op) if reverse and t[0].dims[op.attrs["axis"]] else t[0])
        elif name == "matmul":
            self.set(op.result, self.matmul(op, t))
        elif name == "extract" and t[0] is not None:
            cut = any(d and s != n for d, s, n in zip(t[0].dims, op.attrs["shape"], ins[0].type.shape))
            self.set(op.result, t[0].mix(op) if cut else t[0])
        elif op.results and any(x is not None for x in t):  # cat, anything else: moves elements around
            for r in op.results:
                self.set(r, _union(t).mix(op, _rank(r)))

    def load(self, op):
        if op.attrs["padding"] != "undetermined":
            return None
        array, idx = op.operands[0], op.operands[1:]
        dims = []
        for k, (size, axis) in enumerate(zip(op.attrs["shape"], op.attrs["order"])):
            extent = self.extent(array, axis)
            reaches = size > 1 and not (isinstance(extent, int) and self.inside(idx[k], size, extent))
            dims.append(frozenset({Source(op, axis, extent, size, idx[k].id)}) if reaches else frozenset())
        return _make(dims)

    def inside(self, index, size, extent):
        """Whether every tile this index can name ends within `extent` (or starts past it: a tile wholly
        outside is the grid's business, not padding's): a multiple of the size, or a bounded index."""
        hi = self.ranges.interval(index)[1]
        return extent % size == 0 or (hi is not None and (hi + 1) * size <= extent)

    def reshape(self, op, t):
        src, dst = op.operands[0].type.shape, tuple(op.attrs["shape"])
        a, b = _nonunit(src), _nonunit(dst)
        if [src[k] for k in a] != [dst[k] for k in b]:
            return t.mix(op, len(dst))
        if any(t.dims[k] for k in range(len(src)) if k not in a):
            return t.mix(op, len(dst))
        dims = [frozenset()] * len(dst)
        for i, j in zip(a, b):
            dims[j] = t.dims[i]
        return _make(dims, t.mixed)

    def reduce(self, op, t):
        axes = set(op.attrs["axes"])
        rank = _rank(op.result)
        if any(t.dims[a] for a in axes):
            return t.mix(op, rank)
        dims = [frozenset() if k in axes else d for k, d in enumerate(t.dims)
                if op.attrs["keepdims"] or k not in axes]
        return _make(dims, t.mixed)

    def matmul(self, op, t):
        x, y, *acc = t
        rank = _rank(op.result)
        if (x is not None and x.dims[-1]) or (y is not None and y.dims[-2]):
            return _union([x, y, *acc]).mix(op, rank)
        dims = [frozenset()] * rank
        mixed = frozenset()
        for tt in (x, y):
            if tt is not None:
                mixed |= tt.mixed
                for k in range(rank - 2):
                    dims[k] |= tt.dims[k]
        if x is not None:
            dims[-2] |= x.dims[-2]
        if y is not None:
            dims[-1] |= y.dims[-1]
        return _union([_make(dims, mixed), *acc])

    # ---- where results leave the kernel ----

    def store(self, op, t):
        if t is None:
            return
        array, idx = op.operands[0], op.operands[1:-1]
        size, order = op.operands[-1].type.shape, op.attrs["order"]
        for src, mixer in sorted(t.mixed, key=lambda m: _line(m[0].load)):
            what = f"{_OPS.get(mixer.attrs.get('fn', mixer.name), mixer.name)} at line {_line(mixer)}" if mixer \
                else "an op"
            return self.report(op, src, f"{what} combines that padding with the loaded elements")
        for k, sources in enumerate(t.dims):
            extent = self.extent(array, order[k])
            for src in sorted(sources, key=lambda s: _line(s.load)):
                if src.index != idx[k].id or src.size != size[k] or not _no_longer(extent, src.extent):
                    return self.report(op, src, f"and this store writes the tile's dimension {k} to another "
                                       "place than the one loaded, where the padded elements land inside the array")

    def indexed(self, op, t):
        nd = op.operands[0].type.ndim
        masked = op.attrs.get("masked", False) and self.is_mask(op.operands[-1])
        indices = _union(t[1:1 + nd])
        values = _union(t[1 + nd:len(t) - int(op.attrs.get("masked", False))])
        if op.results:
            self.set(op.result, _union([indices, values]))
        if masked:
            return
        for tt, what in ((indices, "its indices are"), (values, "its values are")):
            if tt is None or (what == "its values are" and not tt.mixed):
                continue
            src = min([s for d in tt.dims for s in d] + [m[0] for m in tt.mixed], key=lambda s: _line(s.load))
            kind = f"atomic_{op.attrs['kind']}" if op.name == "atomic" else "scatter"
            return self.report(op, src, f"{what} computed from it, and this {kind} has no mask that excludes them")

    def report(self, op, src, how):
        array = src.load.operands[0]
        name = f"'{array.name}'" if array.name else "the array"
        extent = f"{src.extent} is not a multiple of {src.size}" if isinstance(src.extent, int) else \
            f"its extent need not be a multiple of {src.size}"
        self.findings.append((op, (
            f"the stored values depend on UNDETERMINED padding: the load at line {_line(src.load)} reads past the "
            f"end of {name} along axis {src.axis} ({extent}) with no padding_mode, {how}; load with "
            "padding_mode=tw.PaddingMode.ZERO (or the identity of what combines it) or mask the padding with "
            "tw.where")))


_OPS = {"sum": "the sum", "prod": "the product", "max": "the max", "min": "the min", "argmax": "argmax",
        "argmin": "argmin", "matmul": "the matmul", "cumsum": "the reverse cumsum", "cumprod": "the reverse cumprod"}


def _line(op):
    return op.loc[1] if op is not None and op.loc else 0


def _no_longer(store_extent, load_extent):
    if isinstance(store_extent, int) and isinstance(load_extent, int):
        return store_extent <= load_extent
    if isinstance(store_extent, int) or isinstance(load_extent, int):
        return True  # one side unknown: say nothing rather than guess
    return store_extent == load_extent


def undetermined_padding(fn, extent, ranges):
    """Findings for the stores, scatters and atomics whose values depend on undetermined padding.
    `extent(array, axis)` gives an array's extent (an int, or a key for one not known); `ranges` the
    intervals of scalar values (ranges.Ranges)."""
    flow = _Flow(extent, ranges)
    flow.block(fn.body)
    seen, out = set(), []
    for op, message in flow.findings:
        if id(op) not in seen:
            seen.add(id(op))
            out.append(finding("undetermined-padding", "error", message, op.loc))
    return out
