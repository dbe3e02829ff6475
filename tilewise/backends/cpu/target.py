"""Which CPU the backend compiles for: TILEWISE_CPU, read without LLVM (loading.py keys the disk cache by
it on warm starts that never load LLVM; compiler.py builds the target machine for it)."""
from __future__ import annotations

import os


def cpu_choice():
    """"host" (the default: this machine's CPU and every feature it has) or an x86-64 level ("x86-64",
    "x86-64-v2", "x86-64-v3", "x86-64-v4") this host can run, so that code for smaller machines is
    tested on a big one (compiler._target_cpu checks it)."""
    return os.environ.get("TILEWISE_CPU", "host").strip().lower() or "host"
