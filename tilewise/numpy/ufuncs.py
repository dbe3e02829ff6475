"""The element-wise operations tilewise.numpy runs as tile code: one row per NumPy ufunc, the tile-language
expression it becomes (`{0}`, `{1}` are its operands, already cast to the loop dtypes NumPy resolves),
and the NumPy ufunc that is its definition (and runs it for small arrays).

Where the tile language's rule differs from NumPy's for some dtypes, the row says which loop dtypes it
takes (`kinds`); other loops fall back to NumPy, visibly (fallback.py)."""
from __future__ import annotations

import numpy as np

# name: (template, kinds of loop dtype it is exact for: "b" bool, "i" signed, "u" unsigned, "f" float)
_ALL, _NUM, _INT, _FLT = "biuf", "iuf", "iu", "f"
BINARY = {
    "add": ("({0} + {1})", _NUM), "subtract": ("({0} - {1})", _NUM), "multiply": ("({0} * {1})", _NUM),
    "true_divide": ("({0} / {1})", _FLT), "divide": ("({0} / {1})", _FLT),
    "floor_divide": ("({0} // {1})", _NUM), "remainder": ("({0} % {1})", _NUM), "mod": ("({0} % {1})", _NUM),
    "power": ("({0} ** {1})", _NUM), "arctan2": ("tw.atan2({0}, {1})", _FLT),
    "maximum": ("tw.maximum({0}, {1})", _NUM), "minimum": ("tw.minimum({0}, {1})", _NUM),
    "fmax": ("tw.where(tw.isnan({1}), {0}, tw.where(tw.isnan({0}), {1}, tw.maximum({0}, {1})))", _FLT),
    "fmin": ("tw.where(tw.isnan({1}), {0}, tw.where(tw.isnan({0}), {1}, tw.minimum({0}, {1})))", _FLT),
    "equal": ("({0} == {1})", _ALL), "not_equal": ("({0} != {1})", _ALL), "less": ("({0} < {1})", _ALL),
    "less_equal": ("({0} <= {1})", _ALL), "greater": ("({0} > {1})", _ALL),
    "greater_equal": ("({0} >= {1})", _ALL),
    "bitwise_and": ("({0} & {1})", "biu"), "bitwise_or": ("({0} | {1})", "biu"),
    "bitwise_xor": ("({0} ^ {1})", "biu"), "left_shift": ("({0} << {1})", _INT),
    "right_shift": ("({0} >> {1})", _INT),
    "logical_and": ("(({0} != 0) & ({1} != 0))", _ALL), "logical_or": ("(({0} != 0) | ({1} != 0))", _ALL),
    "logical_xor": ("(({0} != 0) != ({1} != 0))", _ALL),
}
UNARY = {
    "negative": ("(-{0})", _NUM), "positive": ("{0}", _NUM), "absolute": ("tw.abs({0})", _NUM),
    "fabs": ("tw.abs({0})", _FLT), "square": ("({0} * {0})", _NUM),
    "sqrt": ("tw.sqrt({0})", _FLT), "exp": ("tw.exp({0})", _FLT), "exp2": ("tw.exp2({0})", _FLT),
    "expm1": ("tw.expm1({0})", _FLT), "log": ("tw.log({0})", _FLT), "log2": ("tw.log2({0})", _FLT),
    "log10": ("tw.log10({0})", _FLT), "log1p": ("tw.log1p({0})", _FLT), "sin": ("tw.sin({0})", _FLT),
    "cos": ("tw.cos({0})", _FLT), "tan": ("tw.tan({0})", _FLT), "arcsin": ("tw.asin({0})", _FLT),
    "arccos": ("tw.acos({0})", _FLT), "arctan": ("tw.atan({0})", _FLT), "sinh": ("tw.sinh({0})", _FLT),
    "cosh": ("tw.cosh({0})", _FLT), "tanh": ("tw.tanh({0})", _FLT), "floor": ("tw.floor({0})", _FLT),
    "ceil": ("tw.ceil({0})", _FLT), "trunc": ("tw.trunc({0})", _FLT), "rint": ("tw.round({0})", _FLT),
    "isnan": ("tw.isnan({0})", _FLT), "isinf": ("tw.isinf({0})", _FLT), "isfinite": ("tw.isfinite({0})", _FLT),
    "sign": ("tw.where({0} > 0, 1, tw.where({0} < 0, -1, tw.where({0} == 0, 0, {0})))", _NUM),
    "logical_not": ("({0} == 0)", _ALL), "invert": ("(~{0})", _INT), "bitwise_not": ("(~{0})", _INT),
    "reciprocal": ("(1 / {0})", _FLT),
}
UFUNCS = {name: getattr(np, name) for name in (*BINARY, *UNARY) if hasattr(np, name)}


def template(name, loop_dtypes):
    """The tile expression for ufunc `name` on these loop dtypes, or None where the tile language's rule
    is not NumPy's for them."""
    tmpl, kinds = BINARY.get(name) or UNARY[name]
    if all(dt.kind in kinds for dt in loop_dtypes):
        return tmpl
    if name == "invert" and all(dt.kind == "b" for dt in loop_dtypes):
        return "({0} == 0)"
    return None


def resolve(ufunc, dtypes):
    """(loop input dtypes, output dtype) as NumPy resolves them: `dtypes` holds np.dtypes, and Python's
    int/float/bool/complex for Python scalars (weak, NEP 50)."""
    loop = ufunc.resolve_dtypes((*dtypes, None))
    return loop[:ufunc.nin], loop[-1]
