"""Per-kernel totals of a profile and the table `print(prof)` shows."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class KernelStats:
    """Totals over one kernel's launches (by display name and backend)."""
    name: str
    backend: str
    launches: int = 0
    time_s: float = 0.0
    bytes: int = 0
    flops: int = 0
    compile_s: float = 0.0
    cache: dict = field(default_factory=dict)  # 'memory'/'disk'/'miss' -> launches
    exact: bool = True
    peak_pct: float | None = None  # of the bound (bandwidth or compute) the roofline gives this kernel

    @property
    def mean_s(self):
        return self.time_s / self.launches if self.launches else 0.0

    @property
    def gbps(self):
        return self.bytes / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def gflops(self):
        return self.flops / self.time_s / 1e9 if self.time_s > 0 else 0.0

    @property
    def intensity(self):
        """FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else float("inf")


def attainable_gflops(intensity, peaks):
    return min(peaks["gflops"], peaks["gbps"] * intensity)


def kernel_stats(launches, peaks=None):
    """One KernelStats per (kernel, backend), slowest first."""
    out = {}
    for r in launches:
        s = out.get((r.name, r.backend))
        if s is None:
            s = out[(r.name, r.backend)] = KernelStats(r.name, r.backend)
        s.launches += 1
        s.time_s += r.duration
        s.bytes += r.bytes
        s.flops += r.flops
        s.compile_s += r.compile_s
        s.cache[r.cache] = s.cache.get(r.cache, 0) + 1
        s.exact = s.exact and r.exact
    stats = sorted(out.values(), key=lambda s: -s.time_s)
    if peaks:
        for s in stats:
            if s.time_s > 0:
                bound = attainable_gflops(s.intensity, peaks) if s.flops else None
                s.peak_pct = 100 * (s.gflops / bound if bound else s.gbps / peaks["gbps"])
    return stats


def _si(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(n)


def _cache(c):
    return ",".join(f"{k}:{v}" for k, v in sorted(c.items()))


def table(prof, peaks=None) -> str:
    stats = kernel_stats(prof.launches, peaks)
    total = sum(s.time_s for s in stats)
    head = (f"{'kernel':<34} {'backend':<13} {'launches':>8} {'time s':>9} {'%':>5} {'mean us':>9} "
            f"{'bytes':>8} {'FLOPs':>8} {'GB/s':>7} {'GFLOP/s':>8} {'compile s':>9}  cache")
    if peaks:
        head += "   % peak"
    lines = [f"tilewise profile: {len(stats)} kernel(s), {len(prof.launches)} launch(es), "
             f"{total:.4f} s in kernels, {prof.wall_s:.4f} s wall", head, "-" * len(head)]
    for s in stats:
        name = s.name if len(s.name) <= 34 else s.name[:31] + "..."
        line = (f"{name:<34} {s.backend:<13} {s.launches:>8} {s.time_s:>9.4f} "
                f"{100 * s.time_s / total if total else 0:>5.1f} {s.mean_s * 1e6:>9.1f} "
                f"{_si(s.bytes):>8} {_si(s.flops):>8} {s.gbps:>7.2f} {s.gflops:>8.2f} {s.compile_s:>9.3f}  "
                f"{_cache(s.cache)}{'' if s.exact else '  (counts approximate)'}")
        if peaks and s.peak_pct is not None:
            line += f"   {s.peak_pct:.0f}%"
        lines.append(line)
    if prof.ranges:
        lines += ["", f"{'range':<34} {'count':>8} {'time s':>9}"]
        by = {}
        for r in prof.ranges:
            n, t = by.get(r.name, (0, 0.0))
            by[r.name] = (n + 1, t + r.duration)
        for name, (n, t) in sorted(by.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"{name:<34} {n:>8} {t:>9.4f}")
    return "\n".join(lines)
