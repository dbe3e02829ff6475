"""Run every CPU benchmark script in turn, each in a fresh process (so no JIT, cache or thread pool
carries over), echo its report, and print one markdown table for docs/performance.md.

    python benchmarks/run_all.py [--repeat N] [--only softmax,layer_norm]

A script reports its rows with common.emit_result (a `RESULT {json}` line); for one that does not, the
row is read from its "<name>  <t> ms" lines (the first `tilewise` line against the first other one).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import machine, threads  # noqa: E402

# script, target (for rows read from plain output)
SCRIPTS = [
    ("vector_add.py", 1.5),
    ("cpu_softmax.py", 4.0),
    ("cpu_layer_norm.py", 5.0),
    ("cpu_matmul.py", 0.5),
    ("cpu_compile_time.py", 1.0),
]
_TIMING = re.compile(r"^\s+(\S.*?)\s+([\d.]+) ms\b(.*)$")


def parse_plain(out, target):
    """A row from a script that prints "  name  12.3 ms ..." lines but no RESULT line."""
    rows = [(m.group(1).strip(), float(m.group(2)), m.group(3)) for m in map(_TIMING.match, out.splitlines())
            if m and "sweep" not in m.group(1)]
    tw = next((r for r in rows if r[0].startswith("tilewise")), None)
    base = next((r for r in rows if not r[0].startswith(("tilewise", "numba"))), None)
    if tw is None or base is None:
        return None
    nb = next((r for r in rows if r[0].startswith("numba")), None)
    peak = next((line.split(":", 1)[1].strip() for line in out.splitlines() if "peak" in line), "")
    limit = (tw[2].strip() + (f" of a nominal {peak.split('=')[-1].strip()}" if peak else "")).strip()
    header = next(line for line in out.splitlines() if line and not line[0].isspace())
    return {"kernel": header.split(",")[0], "tilewise_ms": tw[1], "baseline": base[0],
            "baseline_ms": base[1], "ratio": base[1] / tw[1], "target": target,
            "numba_ms": nb[1] if nb else None, "peers_ms": {}, "limit": limit}


def run(script, target, repeat):
    cmd = [sys.executable, os.path.join(HERE, script)] + (["--repeat", str(repeat)] if repeat else [])
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t
    out = proc.stdout
    print(f"$ {' '.join(cmd[1:])}  ({took:.0f}s)")
    print("\n".join(line for line in out.splitlines() if not line.startswith("RESULT ")))
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
        return [{"kernel": script, "error": f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}]
    rows = [json.loads(line[len("RESULT "):]) for line in out.splitlines() if line.startswith("RESULT ")]
    return rows or [parse_plain(out, target) or {"kernel": script, "error": "no timings in its output"}]


def fmt_ms(ms):
    return "—" if ms is None else f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def table(rows):
    lines = ["| kernel | tilewise (cpu) | baseline | ratio | target | numba parallel | what limits it |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['kernel']} | failed: {r['error']} | | | | | |")
            continue
        met = "met" if r["ratio"] >= r["target"] else "NOT met"
        numba = fmt_ms(r.get("numba_ms"))
        peers = ", ".join(f"{k} {fmt_ms(v)}" for k, v in r.get("peers_ms", {}).items())
        if peers:
            numba += f" ({peers})"
        if r["baseline"].startswith("budget"):  # a time budget (cpu_compile_time.py), not a peer's time
            base, target = r["baseline"], f"within budget: {met}"
        else:
            base, target = f"{r['baseline']} {fmt_ms(r['baseline_ms'])}", f">= {r['target']}x: {met}"
        lines.append(f"| {r['kernel']} | {fmt_ms(r['tilewise_ms'])} | {base} | **{r['ratio']:.2f}x** | {target} "
                     f"| {numba} | {r.get('limit', '')} |")
    return "\n".join(lines)


def versions():
    import numpy
    parts = [f"Python {platform.python_version()}", f"NumPy {numpy.__version__}"]
    for mod in ("llvmlite", "numba", "numexpr"):
        try:
            parts.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            parts.append(f"{mod} not installed")
    return ", ".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=0, help="repeats per script (default: each script's own)")
    p.add_argument("--only", default="", help="comma list of substrings of script names")
    a = p.parse_args(argv)
    picked = [(s, t) for s, t in SCRIPTS if os.path.exists(os.path.join(HERE, s))
              and (not a.only or any(o in s for o in a.only.split(",")))]
    load_before = os.getloadavg()[0]
    rows = [row for s, t in picked for row in run(s, t, a.repeat)]
    print()
    # other processes on the machine slow the multi-threaded sides most: say how busy it was
    print(f"{machine()}, {threads()} threads; {versions()}; {datetime.date.today().isoformat()}; "
          f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print()
    print(table(rows))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
