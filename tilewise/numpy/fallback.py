"""Visible fallbacks: a NumPy name tilewise.numpy does not run itself yet runs in NumPy on host data and
returns tilewise.numpy arrays (never silently a NumPy array), warns once per name and calling line with
the user's file:line (`FallbackWarning`), and is counted in `fallbacks()`. `TILEWISE_NUMPY_FALLBACK=error`
makes it an error naming the function."""
from __future__ import annotations

import numpy as np

from .array import ndarray, wrap
from .notice import FallbackWarning, fallbacks, note  # noqa: F401 - the namespace takes them from here


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
