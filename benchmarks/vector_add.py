"""Vector add of 2**24 float32: a tilewise kernel (cpu backend by default) against NumPy's
`np.add(a, b, out=c)` (the baseline, target >= 1.5x), numexpr and numba @njit(parallel=True), in one
process: medians of interleaved repeats after warm-up. Sweeps the tile size first and times the best.

    python benchmarks/vector_add.py [--n 16777216] [--tile 4096,16384,65536] [--repeat 15] [--backend cpu]

Every side writes into a preallocated output, so none pays for mapping and faulting in 64 MiB.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import tilewise as tw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    emit_result,
    interleaved_medians,
    machine,
    math_diagnosis,
    memory_limit,
    numba_module,
    numexpr_module,
    sweep,
    threads,
    use_backend,
    verdict,
)

TARGET = 1.5
TILE_SWEEP = (4096, 16384, 65536)


@tw.kernel
def vector_add(a, b, c, TILE: tw.Constant[int]):
    x = tw.load(a, index=(tw.bid(0),), shape=(TILE,))
    y = tw.load(b, index=(tw.bid(0),), shape=(TILE,))
    tw.store(c, index=(tw.bid(0),), tile=x + y)


def numba_add():
    nb = numba_module()
    if nb is None:
        return None

    @nb.njit(parallel=True)
    def add_nb(a, b, c):
        for i in nb.prange(a.shape[0]):
            c[i] = a[i] + b[i]
    return add_nb


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2**24)
    p.add_argument("--tile", default=",".join(map(str, TILE_SWEEP)), help="elements per block; a comma list is swept")
    p.add_argument("--repeat", "--repeats", type=int, default=15)
    p.add_argument("--backend", default="cpu")
    args = p.parse_args(argv)
    backend = use_backend(args.backend)

    rng = np.random.default_rng(0)
    a = rng.standard_normal(args.n).astype(np.float32)
    b = rng.standard_normal(args.n).astype(np.float32)
    want = a + b
    c_tw, c_np = np.empty_like(a), np.empty_like(a)

    def launcher(tile):
        grid, targs = (tw.cdiv(args.n, tile),), (a, b, c_tw, tile)
        return lambda: tw.launch(None, grid, vector_add, targs)

    print(f"vector add, n={args.n} float32, backend {backend}, {threads()} threads; {machine()}")
    def check(tile):
        np.testing.assert_array_equal(c_tw, want, err_msg=f"tilewise vector add, tile {tile}")
    tile, run = sweep("tile", [int(t) for t in args.tile.split(",")], launcher, lambda: c_tw.fill(np.nan), check,
                      max(3, args.repeat // 3))

    fns = {f"tilewise {backend}, tile {tile}": run, "np.add(out=)": lambda: np.add(a, b, out=c_np)}
    nb, ne = numba_add(), numexpr_module()
    if nb is not None:
        c_nb = np.empty_like(a)
        nb(a, b, c_nb)
        np.testing.assert_array_equal(c_nb, want, err_msg="numba vector add")
        fns["numba parallel"] = lambda: nb(a, b, c_nb)
    if ne is not None:
        c_ne = np.empty_like(a)
        operands = {"a": a, "b": b}
        ne.evaluate("a + b", local_dict=operands, out=c_ne)
        np.testing.assert_array_equal(c_ne, want, err_msg="numexpr vector add")
        fns[f"numexpr, {threads()} threads"] = lambda: ne.evaluate("a + b", local_dict=operands, out=c_ne)
    times = dict(zip(fns, interleaved_medians(list(fns.values()), args.repeat)))
    moved = 3 * a.nbytes  # two reads and one write
    t_tw, t_np = times[next(iter(fns))], times["np.add(out=)"]
    for name, s in times.items():
        print(f"  {name:<22} {s * 1e3:8.2f} ms  {moved / s / 1e9:6.2f} GB/s  {t_np / s:5.2f}x numpy")
    if nb is None or ne is None:
        print("  numba or numexpr not installed (pip install -e '.[bench]'): skipped")
    ratio = t_np / t_tw
    limit = memory_limit(moved, t_tw, working_set_bytes=a.nbytes,
                         otherwise=math_diagnosis(vector_add, (a, b, c_tw, tile), "below bandwidth"))
    print(f"  ratio {ratio:.2f}x NumPy's throughput (target >= {TARGET}x: {verdict(ratio, TARGET)})")
    print(f"  limit: {limit}")
    ne_key = next((k for k in times if k.startswith("numexpr")), None)
    emit_result(f"vector add 2^{args.n.bit_length() - 1} f32 (tile {tile})", t_tw, "np.add(a, b, out=c)", t_np,
                TARGET, times.get("numba parallel"), limit,
                peers={"numexpr": times[ne_key]} if ne_key else None)
    return ratio


if __name__ == "__main__":
    main()
