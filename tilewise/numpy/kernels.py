"""Fusable groups of the expression graph -> one generated tile kernel each, launched through tw.launch.

A group is an element-wise graph (ufuncs, casts, `where`) whose leaves are existing arrays and Python
scalars, stored once (`run_map`) or reduced once (`run_reduce`). Its kernel is written as tile-language
source (`explain` shows it) and compiled by the same frontend and backends as a user's kernel. The
source depends on the group's structure, dtypes and number of dimensions only: sizes, strides and scalar
values are runtime arguments, so a new length reuses the kernel. Every leaf is broadcast to the group's
shape (stride-0 views), and the dimensions that every operand walks alike are merged first, so
contiguous arrays of any rank run as one dimension."""
from __future__ import annotations

import hashlib
import linecache
import math
import types

import numpy as np

from .. import language
from ..frontend.kernel import kernel as tile_kernel
from ..frontend.registry import PUBLIC
from ..ir import dtypes as D
from ..runtime import launch
from . import storage, ufuncs
from .expr import REDUCERS, Leaf, Map, Reduce, Scalar, walk

T1 = 4096              # elements per block of a one-dimensional map
TILE_2D = (8, 512)     # (rows, columns) per block of an n-d map or a reduction
CHUNK = 1 << 16        # a full reduction splits its elements into rows of this many, one partial each
_KERNELS = {}          # source -> tw.Kernel: one compile per structure, whatever the sizes
# What `tw.` means in generated source: the language's functions, dtypes and annotations (the layers
# below this one; the package's face stands above it).
tw = types.SimpleNamespace(**PUBLIC, **{dt.name: dt for dt in D.ALL}, Constant=language.Constant)
# op: (identity, combine two tiles, reduce a tile along an axis)
_REDUCE = {"sum": ("0", "({0} + {1})", "tw.sum"), "prod": ("1", "({0} * {1})", "tw.prod"),
           "max": ("lowest", "tw.maximum({0}, {1})", "tw.max"),
           "min": ("highest", "tw.minimum({0}, {1})", "tw.min")}


def _tw(dt):
    return "tw." + D.from_numpy(np.dtype(dt)).name


def _kernel_dtype(dt):
    return dt.kind in "biuf" and D.from_numpy(dt) is not None


def supported(node, device=storage.CPU):
    """Whether the whole group below `node` can run as tile code (else NumPy runs it)."""
    root = node.arg if isinstance(node, Reduce) else node
    group = walk(root, group=True)
    if device == storage.CPU and not any(isinstance(n, (Leaf, Reduce)) for n in group):
        return False  # no array to walk: a scalar expression, which NumPy fills
    for n in [node, *group]:
        if isinstance(n, (Scalar, Reduce)) and n is not node:
            continue
        if not _kernel_dtype(n.dtype):
            return False
        if isinstance(n, Map) and n.name not in ("cast", "where") and \
                (not all(_kernel_dtype(d) for d in n.loop) or ufuncs.template(n.name, n.loop) is None):
            return False
    return True


class Program:
    """One group as kernel text: array and scalar parameters, and one line per element-wise node. The
    loaded tile of array parameter `a{k}` is named `t{k}`."""

    def __init__(self, root, shape, evaluate):
        self.arrays, self.scalars, self.lines, self.ops, names = [], [], [], [], {}
        self.scalar_dtypes = []  # the loop dtype each scalar enters, as NumPy converts it (NEP 50)
        self.dtypes = {}         # value name -> its dtype, so only real conversions are written
        for n in walk(root, group=True):
            if isinstance(n, Reduce):  # a reduction read by the group ends a group of its own first
                names[id(n)] = self._array(Leaf(evaluate(n)), shape)
            elif isinstance(n, Leaf):
                names[id(n)] = self._array(n, shape)
            elif isinstance(n, Scalar):
                names[id(n)] = f"s{len(self.scalars)}"
                self.scalars.append(n.value)
                self.scalar_dtypes.append(np.asarray(n.value).dtype)
            else:
                for a, dt in zip(n.args, n.loop):
                    if isinstance(a, Scalar):
                        self.scalar_dtypes[int(names[id(a)][1:])] = self.dtypes[names[id(a)]] = dt
                names[id(n)] = self._line(n, [names[id(a)] for a in n.args], len(self.lines))
        self.value = names[id(root)]

    def _array(self, leaf, shape):
        # One parameter per array object, however many leaves hold it. The entry keeps the array itself:
        # keyed by id alone, a temporary (a reduction's result) freed here could hand its id to the next
        # one, which then read the first one's values (seen as rare wrong answers in full test runs).
        seen = self.__dict__.setdefault("_seen", {})
        if id(leaf.array) in seen:
            return seen[id(leaf.array)][1]
        self.arrays.append(storage.broadcast(leaf.array, shape))
        name = f"t{len(self.arrays) - 1}"
        seen[id(leaf.array)] = (leaf.array, name)
        self.dtypes[name] = leaf.dtype
        return name

    def _cast(self, x, dt):
        return x if self.dtypes.get(x) == dt else f"tw.astype({x}, {_tw(dt)})"

    def _line(self, n, args, k):
        if n.name == "cast":
            expr = self._cast(args[0], n.dtype)
        else:
            cast = [self._cast(x, dt) for x, dt in zip(args, n.loop)]
            if n.name == "where":
                expr = f"tw.where({cast[0]}, {cast[1]}, {cast[2]})"
            else:
                expr = ufuncs.template(n.name, n.loop).format(*cast)
                self.ops.append(n.name)
            expr = f"tw.astype({expr}, {_tw(n.dtype)})"
        self.lines.append(f"v{k} = {expr}")
        self.dtypes[f"v{k}"] = n.dtype
        return f"v{k}"

    def device(self, out=None):
        """Where the group runs: its arrays' device (all of them are on one: expr.common_device checks), or
        `out`'s for a scalar expression."""
        if self.arrays:
            return storage.device_of(self.arrays[0])
        return storage.device_of(out) if out is not None else storage.CPU

    def scalar_args(self):
        return [dt.type(v) for v, dt in zip(self.scalars, self.scalar_dtypes)]

    def params(self, *more):
        return [f"a{k}" for k in range(len(self.arrays))] + [f"s{k}" for k in range(len(self.scalars))] + list(more)


def _coalesce(shape, strides):
    """(shape, strides per array) over the fewest dimensions: size-1 dimensions dropped, and neighbours
    merged where every array steps from one to the other as through one dimension."""
    dims = []
    for k, n in enumerate(shape):
        if n == 1:
            continue
        sts = [s[k] for s in strides]
        if dims and all(ps == s * n for ps, s in zip(dims[-1][1], sts)):
            dims[-1] = (dims[-1][0] * n, sts)
        else:
            dims.append((n, sts))
    dims = dims or [(1, [0] * len(strides))]
    return tuple(n for n, _ in dims), [tuple(s[i] for _, s in dims) for i in range(len(strides))]


def _views(arrays, shape, strides):
    return [storage.strided(a, shape, st) for a, st in zip(arrays, strides)]


def kernel_for(source, name):
    """The tw.Kernel of generated source (made once per distinct source)."""
    kernel = _KERNELS.get(source)
    if kernel is None:
        filename = f"<tilewise.numpy {name} {hashlib.sha256(source.encode()).hexdigest()[:12]}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"tw": tw, "math": math}
        exec(compile(source, filename, "exec"), namespace)  # noqa: S102 - source we generated
        kernel = _KERNELS[source] = tile_kernel(namespace[name])
    return kernel


def _name(kind, ops):
    return f"numpy_{kind}_{'_'.join(dict.fromkeys(ops))}"[:80] if ops else f"numpy_{kind}"


def _def(name, params, ndim):
    consts = "T: tw.Constant[int]" if ndim == 1 else "TM: tw.Constant[int], TN: tw.Constant[int]"
    return f"def {name}({', '.join(params)}, {consts}):"


def _loads(prog, ndim, index, indent):
    """A load line per array parameter: n-d tiles are (1, .., 1, TM, TN) loads reshaped to (TM, TN)."""
    out = []
    for k in range(len(prog.arrays)):
        if ndim <= 2:
            out.append(f"{indent}t{k} = tw.load(a{k}, index={index}, shape={'(T,)' if ndim == 1 else '(TM, TN)'})")
        else:
            tile = "(" + "1, " * (ndim - 2) + "TM, TN)"
            out.append(f"{indent}t{k} = tw.reshape(tw.load(a{k}, index={index}, shape={tile}), (TM, TN))")
    return out + [indent + ln for ln in prog.lines]


def _block_index(ndim):
    """(lines, index text) of the block's tile: dimensions before the last two come from bid(2)."""
    if ndim == 1:
        return ["    i = tw.bid(0)"], "(i,)"
    lines = ["    j = tw.bid(0)", "    i = tw.bid(1)", "    r = tw.bid(2)"]
    for k in range(ndim - 3, -1, -1):
        lines += [f"    q{k} = r % out.shape[{k}]", f"    r = r // out.shape[{k}]"]
    return lines, "(" + "".join(f"q{k}, " for k in range(ndim - 2)) + "i, j)"


def map_source(prog, ndim, out_dtype):
    name = _name("fused", prog.ops)
    head, index = _block_index(ndim)
    tile = f"tw.astype({prog.value}, {_tw(out_dtype)})"
    if ndim > 1:
        tile = f"tw.reshape({tile}, ({'1, ' * (ndim - 2)}TM, TN))"
    lines = [_def(name, prog.params("out"), ndim), *head, *_loads(prog, ndim, index, "    "),
             f"    tw.store(out, index={index}, tile={tile})"]
    return name, "\n".join(lines) + "\n"


def run_map(node, out, evaluate):
    """Evaluate an element-wise node with one kernel, into `out` (any view of its shape on its device) or a
    new array."""
    prog = Program(node, node.shape, evaluate)
    result = out if out is not None else storage.empty(node.shape, node.dtype, prog.device())
    shape, strides = _coalesce(node.shape, [a.strides for a in prog.arrays] + [result.strides])
    if not prog.arrays:  # a scalar expression filling `result`
        prog.value = f"tw.broadcast_to({prog.value}, {'(T,)' if len(shape) == 1 else '(TM, TN)'})"
    views = _views([*prog.arrays, result], shape, strides)
    name, source = map_source(prog, len(shape), result.dtype)
    if len(shape) == 1:
        grid, consts = (tw.cdiv(shape[0], T1),), (T1,)
    else:
        tm, tn = TILE_2D
        grid, consts = (tw.cdiv(shape[-1], tn), tw.cdiv(shape[-2], tm), math.prod(shape[:-2])), (tm, tn)
    launch(None, grid, kernel_for(source, name), (*views[:-1], *prog.scalar_args(), views[-1], *consts))
    return result


def _identity(op, dt):
    rule = _REDUCE[op][0]
    if rule in ("0", "1"):
        return rule
    if dt.kind == "f":
        return "-math.inf" if rule == "lowest" else "math.inf"
    info = np.iinfo(dt)
    return str(info.min if rule == "lowest" else info.max)


def reduce_source(prog, op, acc):
    """Each block folds TM rows: whole TN-wide column tiles without a mask, then the partial last one
    masked (masking every tile cost a third of a sum's time)."""
    name = _name(f"{op}", prog.ops)
    ident = _identity(op, acc)
    _, combine, final = _REDUCE[op]
    value = f"tw.astype({prog.value}, {_tw(acc)})"
    masked = f"tw.where(m, {value}, {ident})"
    lines = [_def(name, prog.params("out", "nr"), 2), "    i = tw.bid(0)",
             f"    acc = tw.full((TM, TN), {ident}, {_tw(acc)})", "    for c in range(nr // TN):",
             *_loads(prog, 2, "(i, c)", "        "),
             f"        acc = {combine.format('acc', value)}",
             "    if nr % TN != 0:",
             "        c = nr // TN",
             *_loads(prog, 2, "(i, c)", "        "),
             "        m = (tw.arange(TN, dtype=tw.int64) + c * TN < nr)[None, :]",
             f"        acc = {combine.format('acc', masked)}",
             f"    tw.store(out, index=(i,), tile={final}(acc, axis=1))"]
    return name, "\n".join(lines) + "\n"


def run_reduce(node, out, evaluate):
    """Evaluate a reduction of an element-wise group: rows x columns kernels, one row per kept element."""
    op, acc = node.op, node.dtype
    if op in ("any", "all"):  # over 0/1 int8 values: max and min
        op, acc = ("max" if op == "any" else "min"), np.dtype(np.int8)
    arg = node.arg if not isinstance(node.arg, Reduce) else Leaf(evaluate(node.arg))
    if node.op in ("any", "all"):
        arg = Map("not_equal", (arg, Scalar(0)), arg.shape, np.dtype(bool), (arg.dtype, arg.dtype))
    elif op in ("sum", "prod") and acc.itemsize < 4 and acc.kind == "f":
        acc = np.dtype(np.float32)  # float16 sums accumulate in float32, then round once
    elif acc.kind == "b":  # max and min of bools: over 0/1 int8 values
        acc = np.dtype(np.int8)
    prog, nk, nr = rows_layout(arg, node.axes, evaluate)
    r = _rows(prog, prog.arrays, nk, nr, op, np.dtype(acc), evaluate)
    return as_result(storage.contiguous_reshape(r, node.shape), node.dtype, out, evaluate)


def as_result(r, dtype, out, evaluate):
    """`r` in `dtype` (any/all's int8 as bool), into `out` when given: NumPy on the host, a kernel on a device."""
    if storage.device_of(r) == storage.CPU:
        r = r.astype(dtype, copy=False)
        if out is None:
            return r
        np.copyto(out, r, casting="unsafe")
        return out
    if r.dtype == dtype and out is None:
        return r
    return run_map(Map("cast", [Leaf(r)], r.shape, dtype, (r.dtype,)), out, evaluate)


def rows_layout(arg, axes, evaluate):
    """(program, rows, columns) for walking `arg` as rows x columns: one row per element of the axes kept,
    the values along `axes` in each row. The program's arrays are the 2-d views; where the operands do not
    walk that way as two dimensions, the values are first laid out so (one extra pass)."""
    kept = [k for k in range(len(arg.shape)) if k not in axes]
    order = kept + list(axes)
    kshape, rshape = tuple(arg.shape[k] for k in kept), tuple(arg.shape[k] for k in axes)
    prog = Program(arg, arg.shape, evaluate)
    strides = [tuple(a.strides[k] for k in order) for a in prog.arrays]
    kdims, kst = _coalesce(kshape, [s[:len(kept)] for s in strides])
    rdims, rst = _coalesce(rshape, [s[len(kept):] for s in strides])
    if len(kdims) > 1 or len(rdims) > 1:
        buf = storage.empty(kshape + rshape, arg.dtype, prog.device())
        run_map(arg, storage.transpose(buf, np.argsort(order)), evaluate)
        nk, nr = math.prod(kshape), math.prod(rshape)
        prog = Program(Leaf(buf), buf.shape, evaluate)
        prog.arrays = [storage.contiguous_reshape(buf, (nk, nr))]
        return prog, nk, nr
    nk, nr = kdims[0], rdims[0]
    prog.arrays = [storage.strided(a, (nk, nr), (ks[0], rs[0])) for a, ks, rs in zip(prog.arrays, kst, rst)]
    return prog, nk, nr


def _rows(prog, views, nk, nr, op, acc, evaluate):
    """out[i] = op over j of the group's value at [i, j]; a single long row is split into CHUNK-long
    rows (and a remainder row), whose partial results are then reduced the same way (on the host, by
    NumPy, when they are there)."""
    name, source = reduce_source(prog, op, acc)
    kernel = kernel_for(source, name)
    tm, tn = TILE_2D
    scalars = prog.scalar_args()
    device = prog.device()

    def run_rows(vs, rows, cols, out):
        launch(None, (tw.cdiv(rows, tm),), kernel, (*vs, *scalars, out, np.int64(cols), tm, tn))
    if nk > 1 or nr <= CHUNK:
        out = storage.empty((nk,), acc, device)
        run_rows(views, nk, nr, out)
        return out
    full, rest = nr // CHUNK, nr % CHUNK
    parts = storage.empty((full + (rest > 0),), acc, device)
    run_rows([storage.strided(v, (full, CHUNK), (CHUNK * v.strides[1], v.strides[1])) for v in views], full, CHUNK,
             storage.strided(parts, (full,), parts.strides))
    if rest:
        run_rows([_offset(v, full * CHUNK) for v in views], 1, rest, storage.view(parts, lambda x: x[full:]))
    if device == storage.CPU:
        with np.errstate(all="ignore"):
            return np.asarray(REDUCERS[op].reduce(parts, dtype=acc), acc).reshape(1)
    prog_parts = Program(Leaf(parts), parts.shape, evaluate)
    prog_parts.arrays = [storage.contiguous_reshape(parts, (1, parts.shape[0]))]
    return _rows(prog_parts, prog_parts.arrays, 1, parts.shape[0], op, acc, evaluate)


def _offset(v, k):
    """The (1, columns) view of `v`'s first row from column `k` on."""
    return storage.view(v, lambda x: x[:1, k:])


def run(node, out, evaluate):
    """Evaluate `node` (a map or a reduction) with generated kernels; `evaluate` gives the values of the
    groups it reads (reductions inside it)."""
    return run_reduce(node, out, evaluate) if isinstance(node, Reduce) else run_map(node, out, evaluate)
