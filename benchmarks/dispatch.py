"""Launch dispatch cost of a small cached kernel: argument classification and the specialisation
lookup (everything `tw.launch` does before the backend runs), and a whole reference-backend launch.

    python benchmarks/dispatch.py
"""
import statistics
import time

import numpy as np

import tilewise as tw
from tilewise import backends
from tilewise.runtime.launch import _prepare


@tw.kernel
def copy(a, b, T: tw.Constant[int]):
    tw.store(b, (tw.bid(0),), tw.load(a, (tw.bid(0),), (T,)))


def per_call_us(fn, n=5000, repeats=7):
    """Median over repeats of the mean time of n calls, after a warm-up."""
    fn()
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(samples)


def main():
    a = np.ones(16, np.float32)
    b = np.zeros_like(a)
    args = (a, b, 16)
    backend = backends.host_backend_name()
    tw.launch(None, (1,), copy, args)
    dispatch = per_call_us(lambda: _prepare(copy, args, backend))
    launch = per_call_us(lambda: tw.launch(None, (1,), copy, args), n=1000)
    print(f"dispatch (classify + specialisation lookup): {dispatch:6.1f} us   (target <= 20 us)")
    print(f"whole launch on '{backend}', one 16-element block: {launch:6.1f} us")


if __name__ == "__main__":
    main()
