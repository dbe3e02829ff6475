"""The one GEMM kernel family, written in the tile language, and its launch.

Each block computes a TM x TN tile of one batch entry's result: it walks k in TK steps with `tw.mma`
into an accumulator of the accumulation dtype, applies alpha and beta * c, calls the epilog on the
accumulator (the compiler inlines it there) and stores the result and the epilog's auxiliary outputs.
The source is generated per *structure* (batched or not, accumulation dtype, which of alpha / c /
epilog inputs / auxiliary and reduction outputs there are, and how each input broadcasts); dtypes,
strides and alignment specialise it further as for any kernel, and sizes are runtime values, so a new
shape reuses the compiled code. Strided and transposed operands are read as they are by the tile loads,
and broadcast batch dimensions are stride-0 views: nothing is copied."""
from __future__ import annotations

import hashlib
import linecache

from numpy.lib.stride_tricks import as_strided

from .. import backends
from ..frontend.kernel import kernel as tile_kernel
from ..runtime.launch import launch
from ._tw import tw

_KERNELS = {}  # structure key -> tw.Kernel

# A fixed tile per backend and accumulation dtype (no autotuning yet). On cpu, 128x256x128 was the
# fastest float32 tile of benchmarks/cpu_matmul.py's sweep; float64 halves the bytes per tile. GPU
# tiles must fit shared memory with their double-buffered loads; the emulator's are small because each
# of its blocks is 128 host threads.
_TILES = {"cpu": {"float64": (128, 128, 64)}, "reference": {}, "cuda": {}, "cuda-emulated": {}}
_DEFAULT_TILES = {"cpu": (128, 256, 128), "reference": (64, 64, 64), "cuda": (64, 64, 32),
                  "cuda-emulated": (32, 32, 32)}


def tiles_for(acc):
    name = backends.host_backend_name()
    return _TILES.get(name, {}).get(acc) or _DEFAULT_TILES.get(name, (64, 64, 32))


def _load(array, i, j, rows, cols, batched):
    if not batched:
        return f"tw.load({array}, index=({i}, {j}), shape=({rows}, {cols}), padding_mode=tw.PaddingMode.ZERO)"
    return (f"tw.load({array}, index=(bb, {i}, {j}), shape=(1, {rows}, {cols}), "
            f"padding_mode=tw.PaddingMode.ZERO).reshape(({rows}, {cols}))")


def _store(array, i, j, tile, rows, cols, batched):
    if not batched:
        return f"tw.store({array}, index=({i}, {j}), tile=({tile}).astype({array}.dtype))"
    return f"tw.store({array}, index=(bb, {i}, {j}), tile=({tile}).astype({array}.dtype).reshape((1, {rows}, {cols})))"


def source(key):
    """The kernel's text for a structure key (see Structure in matmul.py)."""
    batched, acc, has_alpha, has_c, inputs, n_aux, row_sum, sum_a, sum_b = key
    params = ["a", "b", "out"] + (["c"] if has_c else [])
    body = ["    bm = tw.bid(0)", "    bn = tw.bid(1)"] + (["    bb = tw.bid(2)"] if batched else [])
    body.append(f"    acc = tw.zeros((TM, TN), dtype=tw.{acc})")
    if sum_a:
        body.append(f"    sa = tw.zeros((TM,), dtype=tw.{acc})")
    if sum_b:
        body.append(f"    sb = tw.zeros((TN,), dtype=tw.{acc})")
    ka = 2 if batched else 1
    shape_a = "(1, TM, TK)" if batched else "(TM, TK)"
    body += [f"    for k in range(tw.num_tiles(a, axis={ka}, shape={shape_a})):",
             "        ta = " + _load("a", "bm", "k", "TM", "TK", batched),
             "        tb = " + _load("b", "k", "bn", "TK", "TN", batched),
             "        acc = tw.mma(ta, tb, acc)"]
    if sum_a:
        body.append(f"        sa = sa + tw.sum(ta.astype(tw.{acc}), axis=1)")
    if sum_b:
        body.append(f"        sb = sb + tw.sum(tb.astype(tw.{acc}), axis=0)")
    if has_alpha:
        body.append("    acc = acc * alpha")
    if has_c:
        body.append(f"    acc = acc + beta * {_load('c', 'bm', 'bn', 'TM', 'TN', batched)}.astype(tw.{acc})")
    scalars = (["alpha"] if has_alpha else []) + (["beta"] if has_c else [])
    kwargs = []
    for i, (name, kind, is_float) in enumerate(inputs):
        if kind == "scalar":
            scalars.append(f"s{i}")
            kwargs.append(f"{name}=s{i}")
            continue
        rows, cols = kind
        params.append(f"x{i}")
        tile = _load(f"x{i}", "bm" if rows else "0", "bn" if cols else "0", "TM" if rows else "1",
                     "TN" if cols else "1", batched)
        cast = f".astype(tw.{acc})" if is_float and acc.startswith("float") else ""
        body.append(f"    x{i}t = {tile}{cast}")
        kwargs.append(f"{name}=x{i}t")
    aux = [f"aux{i}" for i in range(n_aux)]
    params += aux + (["rs"] if row_sum else []) + (["ga"] if sum_a else []) + (["gb"] if sum_b else [])
    targets = ", ".join(["r"] + [f"{x}t" for x in aux])
    body.append(f"    {targets} = EPILOG({', '.join(['acc'] + kwargs)})")
    for x in ["out"] + aux:
        body.append("    " + _store(x, "bm", "bn", "r" if x == "out" else f"{x}t", "TM", "TN", batched))
    if row_sum:
        index = "bb, rows" if batched else "rows"
        body += ["    rows = bm * TM + tw.arange(TM)",
                 f"    tw.atomic_add(rs, ({index},), tw.sum(r.astype(rs.dtype), axis=1))"]
    if sum_a:
        tile = "sa.reshape((1, TM))" if batched else "sa"
        body += ["    if bn == 0:", f"        tw.store(ga, index=({'bb, ' if batched else ''}bm,), tile={tile})"]
    if sum_b:
        tile = "sb.reshape((1, TN))" if batched else "sb"
        body += ["    if bm == 0:", f"        tw.store(gb, index=({'bb, ' if batched else ''}bn,), tile={tile})"]
    consts = ["TM: tw.Constant[int]", "TN: tw.Constant[int]", "TK: tw.Constant[int]", "EPILOG: tw.Constant[object]"]
    head = f"def gemm({', '.join(params + scalars + consts)}):"
    return "\n".join([head] + body) + "\n", params, scalars


def kernel_for(key):
    """(the tw.Kernel, its array parameter names, its scalar parameter names) of a structure key."""
    entry = _KERNELS.get(key)
    if entry is None:
        text, params, scalars = source(key)
        filename = f"<tilewise.math gemm {hashlib.sha256(text.encode()).hexdigest()[:12]}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        namespace = {"tw": tw}
        exec(compile(text, filename, "exec"), namespace)  # noqa: S102 - source we generated
        entry = _KERNELS[key] = (tile_kernel(namespace["gemm"]), params, scalars)
    return entry


def _mergeable(v):
    s0, s1 = v.shape[:2]
    return s0 == 1 or s1 == 1 or v.strides[0] == v.strides[1] * s1


def _merge_two(v):
    s0, s1 = v.shape[:2]
    stride = v.strides[0] if s1 == 1 else v.strides[1]
    return as_strided(v, (s0 * s1,) + v.shape[2:], (stride,) + v.strides[2:])


def batches(views, nb):
    """The arrays (first nb dimensions the batch, the same for all) as lists of views with one batch
    dimension: merged where every view's strides allow, else one list per index of the first dimension."""
    if nb == 1:
        yield views
    elif all(_mergeable(v) for v in views):
        yield from batches([_merge_two(v) for v in views], nb - 1)
    else:
        for i in range(views[0].shape[0]):
            yield from batches([v[i] for v in views], nb - 1)


def run(key, arrays, scalars, nb, m, n, epilog, stream=None):
    """Launch the kernel of `key` on `arrays` (in its parameter order; first nb dimensions the batch)."""
    kern, _, _ = kernel_for(key)
    tm, tn, tk = tiles_for(key[1])
    grid_mn = (-(-m // tm), -(-n // tn))
    if m == 0 or n == 0:  # an empty result: nothing to compute (a grid may not be empty)
        return
    if nb == 0:
        launch(stream, grid_mn + (1,), kern, (*arrays, *scalars, tm, tn, tk, epilog))
        return
    for views in batches(list(arrays), nb):
        if views[0].shape[0]:
            launch(stream, grid_mn + (views[0].shape[0],), kern, (*views, *scalars, tm, tn, tk, epilog))

