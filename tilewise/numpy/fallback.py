"""Visible fallbacks: a NumPy name tilewise.numpy does not run itself yet runs in NumPy on host data and
returns tilewise.numpy arrays (never silently a NumPy array), warns once per name and calling line with
the user's file:line (`FallbackWarning`), and is counted in `fallbacks()`. `TILEWISE_NUMPY_FALLBACK=error`
makes it an error naming the function."""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np

from .array import ndarray, wrap

_PACKAGE = str(Path(__file__).resolve().parent.parent)
_SEEN = {}  # name -> {"calls": n, "lines": {"file:line", ...}}


class FallbackWarning(UserWarning):
    """A tilewise.numpy function ran in NumPy on host data."""


def fallbacks():
    """{name: {"calls": count, "lines": sorted list of the user's file:line}} for this process."""
    return {name: {"calls": v["calls"], "lines": sorted(v["lines"])} for name, v in sorted(_SEEN.items())}


def _caller():
    """The first frame outside tilewise and NumPy: where the user called."""
    f = sys._getframe(2)
    while f is not None:
        file = f.f_code.co_filename
        if not file.startswith(_PACKAGE) and "/numpy/" not in file.replace("\\", "/"):
            return file, f.f_lineno
        f = f.f_back
    return "<unknown>", 0


def note(name):
    """Record (and warn once per calling line about) a fallback for `name`; raises where they are errors."""
    if os.environ.get("TILEWISE_NUMPY_FALLBACK", "").strip().lower() == "error":
        raise NotImplementedError(f"tilewise.numpy.{name} is not implemented natively yet and "
                                  "TILEWISE_NUMPY_FALLBACK=error forbids running it in NumPy")
    file, line = _caller()
    where = f"{file}:{line}"
    entry = _SEEN.setdefault(name, {"calls": 0, "lines": set()})
    entry["calls"] += 1
    if where not in entry["lines"]:
        entry["lines"].add(where)
        warnings.warn_explicit(f"tilewise.numpy.{name} ran in NumPy on host data (not yet a tile kernel); "
                               "see tilewise.numpy.fallbacks()", FallbackWarning, file, line)


def to_numpy(x):
    """Our arrays (also inside lists, tuples and dicts) as NumPy arrays."""
    if isinstance(x, ndarray):
        return x._value()
    if isinstance(x, (list, tuple)):
        return type(x)(to_numpy(v) for v in x)
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    return x


def to_ours(x):
    """NumPy arrays in a result (also inside tuples and lists) as ours."""
    if isinstance(x, np.ndarray):
        return wrap(x)
    if isinstance(x, tuple) and not hasattr(x, "_fields"):
        return tuple(to_ours(v) for v in x)
    if isinstance(x, list):
        return [to_ours(v) for v in x]
    if isinstance(x, tuple):  # a named tuple (e.g. linalg results): same type, fields converted
        return type(x)(*(to_ours(v) for v in x))
    return x


def call(name, fn, args, kwargs):
    note(name)
    out = kwargs.get("out")
    result = fn(*to_numpy(args), **to_numpy(kwargs))
    return out if out is not None and result is to_numpy(out) else to_ours(result)


def wrapper(name, fn):
    """`fn` (a NumPy function) as a visible fallback under `name`."""
    def run(*args, **kwargs):
        return call(name, fn, args, kwargs)
    run.__name__ = run.__qualname__ = name.rsplit(".", 1)[-1]
    run.__doc__ = f"NumPy's {name}, run on host data (a visible fallback: see tilewise.numpy.fallbacks())."
    run.__wrapped__ = fn
    return run
