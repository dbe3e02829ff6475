"""Display names of kernels: tilewise.numpy and tilewise.math generate kernels named like
`numpy_fused_multiply_add_sin`; they read better as `numpy.fused[multiply,add,sin]`."""
from __future__ import annotations

import functools

import numpy as np

_GENERATORS = ("numpy", "math")


def _is_word(name):
    return callable(getattr(np, name, None))


def _words(tokens):
    """Rejoin tokens that spell one NumPy name (`floor_divide`) or one upper-case flag (`GELU_BIAS`)."""
    out, i = [], 0
    while i < len(tokens):
        j = next((j for j in range(len(tokens), i + 1, -1) if _is_word("_".join(tokens[i:j]))), i + 1)
        if j == i + 1 and tokens[i].isupper():
            while j < len(tokens) and tokens[j].isupper():
                j += 1
        out.append("_".join(tokens[i:j]))
        i = j
    return out


@functools.lru_cache(maxsize=1024)
def display_name(name: str) -> str:
    pkg, _, rest = name.partition("_")
    if pkg not in _GENERATORS or not rest:
        return name
    words = _words(rest.split("_"))
    kind, ops = words[0], words[1:]
    return f"{pkg}.{kind}[{','.join(ops)}]" if ops else f"{pkg}.{kind}"
