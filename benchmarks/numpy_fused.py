"""tilewise.numpy against NumPy and numexpr, in one process (medians of interleaved repeats after warm-up):

1. `a*b + c*np.sin(d) - e` over five float32 arrays of 10^7 (targets: >= 3x NumPy, >= 1.2x numexpr);
2. `float(np.sum(a*a + b))` (>= 3x NumPy);
3. a 300-iteration loop of element-wise updates on 1024-element arrays (>= 0.5x NumPy's speed);
4. one small op whose value is read back at once (<= 25 us).

    python benchmarks/numpy_fused.py [--n 10000000] [--repeat 9]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import tilewise.numpy as tnp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import emit_result, interleaved_medians, machine, memory_limit, numexpr_module, threads  # noqa: E402


def expression(args, rng):
    arrays = [rng.standard_normal(args.n).astype(np.float32) for _ in range(5)]
    a, b, c, d, e = arrays
    ta, tb, tc, td, te = (tnp.asarray(x) for x in arrays)

    def ours():
        return np.asarray(ta * tb + tc * tnp.sin(td) - te)

    def numpy():
        return a * b + c * np.sin(d) - e
    want = (a.astype(np.float64) * b + c.astype(np.float64) * np.sin(d.astype(np.float64)) - e)
    np.testing.assert_allclose(ours(), want, rtol=1e-5, atol=1e-5)
    fns = {"tilewise.numpy": ours, "numpy": numpy}
    ne = numexpr_module()
    if ne is not None:
        env = {"a": a, "b": b, "c": c, "d": d, "e": e}
        fns["numexpr"] = lambda: ne.evaluate("a*b + c*sin(d) - e", local_dict=env)
        np.testing.assert_allclose(fns["numexpr"](), want, rtol=1e-5, atol=1e-5)
    times = dict(zip(fns, interleaved_medians(list(fns.values()), args.repeat)))
    moved = 6 * a.nbytes
    t = times["tilewise.numpy"]
    for name, s in times.items():
        print(f"  {name:<16} {s * 1e3:8.2f} ms  {moved / s / 1e9:6.2f} GB/s  {times['numpy'] / s:5.2f}x numpy")
    limit = memory_limit(moved, t, working_set_bytes=a.nbytes)
    print(f"  limit: {limit}")
    emit_result(f"numpy a*b + c*sin(d) - e, 5 x {args.n} f32", t, "NumPy", times["numpy"], 3.0, None, limit,
                peers={"numexpr": times["numexpr"]} if "numexpr" in times else None)


def reduction(args, rng):
    a, b = (rng.standard_normal(args.n).astype(np.float32) for _ in range(2))
    ta, tb = tnp.asarray(a), tnp.asarray(b)
    want = float((a.astype(np.float64) ** 2 + b).sum())
    assert abs(float(tnp.sum(ta * ta + tb)) - want) < 1e-4 * float(np.abs(a.astype(np.float64) ** 2 + b).sum())
    fns = {"tilewise.numpy": lambda: float(tnp.sum(ta * ta + tb)), "numpy": lambda: float(np.sum(a * a + b))}
    times = dict(zip(fns, interleaved_medians(list(fns.values()), args.repeat)))
    for name, s in times.items():
        print(f"  {name:<16} {s * 1e3:8.2f} ms  {times['numpy'] / s:5.2f}x numpy")
    limit = memory_limit(2 * a.nbytes, times["tilewise.numpy"], working_set_bytes=a.nbytes)
    print(f"  limit: {limit}")
    emit_result(f"numpy float(sum(a*a + b)), {args.n} f32", times["tilewise.numpy"], "NumPy", times["numpy"], 3.0,
                None, limit)


def small_loop(args, rng):
    u0, v0 = rng.standard_normal(1024), rng.standard_normal(1024)

    def loop(xp, u, v):
        for k in range(300):
            u = u + 0.01 * v
            v = v - 0.01 * u * k / 300
        return u, v
    ours = lambda: loop(tnp, tnp.asarray(u0), tnp.asarray(v0))  # noqa: E731
    numpy = lambda: loop(np, u0, v0)  # noqa: E731
    got, want = ours(), numpy()
    np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=1e-12)
    t_ours, t_np = interleaved_medians([ours, numpy], args.repeat)
    print(f"  tilewise.numpy {t_ours * 1e3:8.2f} ms, numpy {t_np * 1e3:8.2f} ms: {t_np / t_ours:.2f}x numpy's speed")
    emit_result("numpy 300-step loop on 1024 f64", t_ours, "NumPy", t_np, 0.5, None, "Python overhead per op")

    x = tnp.asarray(u0)
    samples = []
    for _ in range(200):
        t = time.perf_counter()
        float(tnp.sum(x * 2.0))
        samples.append(time.perf_counter() - t)
    latency = sorted(samples)[len(samples) // 2]
    print(f"  one op read back at once: {latency * 1e6:.1f} us (median of 200; budget 25 us)")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10**7)
    p.add_argument("--repeat", type=int, default=9)
    args = p.parse_args(argv)
    os.environ.setdefault("TILEWISE_BACKEND", "cpu")
    rng = np.random.default_rng(0)
    print(f"tilewise.numpy, {threads()} threads; {machine()}")
    print("a*b + c*sin(d) - e:")
    expression(args, rng)
    print("float(sum(a*a + b)):")
    reduction(args, rng)
    print("small arrays:")
    small_loop(args, rng)


if __name__ == "__main__":
    main()
