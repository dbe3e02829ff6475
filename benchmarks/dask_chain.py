"""Dask with tilewise.numpy chunks against Dask with NumPy chunks, on a LocalCluster of worker processes:

    float((a*b + c*sin(d) - e).sum())   five float32 Dask arrays of --n elements, --chunks chunks each
    float((a*b + c*d - e).sum())        the same without the sine (what fusion alone gives)

The arrays are made and kept (persisted) on the workers, NumPy chunks and, wrapping the same memory,
tilewise.numpy chunks, so only the program is timed (medians of interleaved repeats after warm-up).
Also timed: the same program in this one process with tilewise.numpy and with NumPy on arrays of the
same size (what distribution costs). Target: tilewise chunks >= 1.5x NumPy chunks.

    python benchmarks/dask_chain.py [--n 40000000] [--chunks 8] [--workers 2] [--repeat 5] [--no-sin-only]
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit_result, interleaved_medians, machine  # noqa: E402


def program(xp_sin, a, b, c, d, e):
    return (a * b + c * (d if xp_sin is None else xp_sin(d)) - e).sum()


def run(args, client, sine=True):
    import dask.array as da
    from distributed import wait

    import tilewise.numpy as tnp
    from tilewise import dask as twdask

    rng = da.random.default_rng(0)
    chunk = -(-args.n // args.chunks)
    plain = [rng.standard_normal(args.n, chunks=chunk, dtype=np.float32) for _ in range(5)]
    plain = client.persist(plain)
    ours = client.persist([twdask.to_tilewise(x) for x in plain])  # same memory, tilewise.numpy chunks
    wait(plain + ours)

    def dask_numpy():
        return float(client.compute(program(da.sin if sine else None, *plain), sync=True))

    def dask_tilewise():
        return float(client.compute(program(da.sin if sine else None, *ours), sync=True))

    r_np, r_tw = dask_numpy(), dask_tilewise()
    assert abs(r_np - r_tw) <= 1e-4 * max(1.0, abs(r_np)) + 1e-6 * args.n, (r_np, r_tw)

    local = np.random.default_rng(1)
    arrays = [local.standard_normal(args.n, dtype=np.float32) for _ in range(5)]
    tarrays = [tnp.asarray(x) for x in arrays]

    def one_numpy():
        return float(program(np.sin if sine else None, *arrays))

    def one_tilewise():
        return float(program(tnp.sin if sine else None, *tarrays))

    a, b, c, d, e = (x.astype(np.float64) for x in arrays)
    want = float((a * b + c * (np.sin(d) if sine else d) - e).sum())
    assert abs(one_tilewise() - want) <= 1e-6 * args.n + 1e-3, (one_tilewise(), want)
    del a, b, c, d, e

    fns = {"dask, tilewise chunks": dask_tilewise, "dask, NumPy chunks": dask_numpy,
           "one process, tilewise.numpy": one_tilewise, "one process, NumPy": one_numpy}
    times = dict(zip(fns, interleaved_medians(list(fns.values()), args.repeat, warmup=1)))
    base = times["dask, NumPy chunks"]
    moved = 5 * args.n * 4
    for name, s in times.items():
        print(f"  {name:<30} {s * 1e3:9.1f} ms  {moved / s / 1e9:6.2f} GB/s read  {base / s:5.2f}x dask+NumPy")
    text = "a*b + c*sin(d) - e" if sine else "a*b + c*d - e"
    emit_result(f"dask sum({text}), 5 x {args.n} f32, {args.chunks} chunks, {args.workers} workers",
                times["dask, tilewise chunks"], "Dask+NumPy", base, 1.5,
                peers={"one process tilewise.numpy": times["one process, tilewise.numpy"],
                       "one process NumPy": times["one process, NumPy"]},
                limit="the float32 sin (docs/numpy.md, Performance)" if sine else "memory")
    return base / times["dask, tilewise chunks"]


def main(argv=None, client=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4 * 10**7)
    p.add_argument("--chunks", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads-per-worker", type=int, default=1)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--no-sin-only", action="store_true", help="only the chain without the sine")
    args = p.parse_args(argv)
    from tilewise import dask as twdask

    cores = os.cpu_count() or 1
    print(f"{args.workers} worker processes x {args.threads_per_worker} Dask thread(s), TILEWISE_NUM_THREADS="
          f"{twdask.worker_threads(args.workers, args.threads_per_worker, cores)} in each; {machine()}")

    def both(client):
        ratios = []
        for sine in ((False,) if args.no_sin_only else (True, False)):
            text = "a*b + c*sin(d) - e" if sine else "a*b + c*d - e"
            print(f"float(({text}).sum()), 5 x {args.n} float32, {args.chunks} chunks:")
            ratios.append(run(args, client, sine))
        return ratios[0]
    if client is not None:
        return both(client)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # distributed's notes on closing a cluster
        cluster, client = twdask.local_cluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                                               memory_limit=0, dashboard_address=None)
        try:
            return both(client)
        finally:
            client.close()
            cluster.close()


if __name__ == "__main__":
    main()
