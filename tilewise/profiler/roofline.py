"""`prof.roofline(path)`: a PNG with each kernel as a point (arithmetic intensity, achieved GFLOP/s)
under the machine's roofs (measured bandwidth and compute peak, peaks.py). matplotlib is imported only
here, so the rest of the profiler works without it."""
from __future__ import annotations

from .report import kernel_stats


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("prof.roofline() draws with matplotlib, which is not installed: "
                          "pip install matplotlib (tilewise's [dev] extra includes it)") from None
    matplotlib.use("Agg")  # a file, never a window
    import matplotlib.pyplot as plt
    return plt


def plot(prof, path, peaks=None):
    plt = _pyplot()
    if peaks is None:
        from .peaks import peaks as measured
        peaks = measured()
    stats = [s for s in kernel_stats(prof.launches, peaks) if s.time_s > 0 and s.bytes]
    fig, ax = plt.subplots(figsize=(7, 5))
    lo = min([s.intensity for s in stats if s.flops] + [0.01]) / 4
    hi = max([s.intensity for s in stats if s.flops] + [100.0]) * 4
    ridge = peaks["gflops"] / peaks["gbps"]
    xs = [lo, ridge, hi]
    ax.loglog(xs, [min(peaks["gflops"], peaks["gbps"] * x) for x in xs], "k-", lw=2,
              label=f"roof: {peaks['gbps']:.1f} GB/s, {peaks['gflops']:.1f} GFLOP/s")
    for s in stats:
        x = s.intensity if s.flops else lo
        y = s.gflops if s.flops else s.gbps * lo
        ax.loglog([x], [max(y, 1e-6)], "o", label=f"{s.name} ({s.launches}x, {s.peak_pct or 0:.0f}% of roof)")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"tilewise roofline ({peaks.get('backend', '')})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
