"""The NumPy submodules tilewise.numpy mirrors (linalg, fft, random) run as visible fallbacks for now:
each name is NumPy's, run on host data, returning tilewise.numpy arrays."""
from __future__ import annotations

import numpy as np

from . import fallback


def attribute(submodule, name):
    obj = getattr(getattr(np, submodule), name)
    if callable(obj) and not isinstance(obj, type):
        return fallback.wrapper(f"{submodule}.{name}", obj)
    return obj
