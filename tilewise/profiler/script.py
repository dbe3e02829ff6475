"""`tilewise profile SCRIPT [ARGS...] [--trace PATH] [--roofline PNG]`: run a script under a profile, like
`python -m cProfile`, then print the table (and write the trace and the roofline if asked)."""
from __future__ import annotations

import runpy
import sys

from .session import profile

OPTIONS = ("--trace", "--roofline")


def split_argv(argv):
    """(script args, {option: value}): `--trace`/`--roofline` are taken from anywhere after the script
    (`--trace=PATH` too); everything after a `--` is the script's, untouched."""
    rest, opts, i = [], {}, 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest += argv[i + 1:]
            break
        name, eq, value = a.partition("=")
        if name in OPTIONS:
            if not eq:
                if i + 1 >= len(argv):
                    raise ValueError(f"{name} needs a path")
                i, value = i + 1, argv[i + 1]
            opts[name[2:]] = value
        else:
            rest.append(a)
        i += 1
    return rest, opts


def run(script, argv, trace=None, roofline=None, out=None) -> int:
    out = out or sys.stdout
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *argv]
    sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(script)))
    code = 0
    try:
        with profile() as prof:
            try:
                runpy.run_path(script, run_name="__main__")
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
    print(prof.table(), file=out)
    if trace:
        prof.export_chrome_trace(trace)
        print(f"trace written to {trace} (open it in ui.perfetto.dev or chrome://tracing)", file=out)
    if roofline:
        prof.roofline(roofline)
        print(f"roofline written to {roofline}", file=out)
    return code
