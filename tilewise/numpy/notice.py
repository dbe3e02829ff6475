"""The record of fallbacks: each NumPy function that ran in NumPy instead of as tile code warns once per
calling line, with the user's file and line (`FallbackWarning`), and counts in `fallbacks()`;
`TILEWISE_NUMPY_FALLBACK=error` makes it an error naming the function."""
from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

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
