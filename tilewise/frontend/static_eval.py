"""cuTile's `static_eval(expr)`: the expression is plain Python, evaluated while the kernel is lowered,
with any syntax (comprehensions, lambdas, conditional expressions). Compile-time names are their Python
values; tiles and arrays are proxies that answer `.shape`/`.dtype`/`.ndim` and build tile arithmetic, so
`static_eval(x + 1 if N % 2 == 0 else y - 1)` emits only the branch Python takes."""
from __future__ import annotations

import ast

from ..errors import TileError, TileStaticEvalError
from . import builtins as B
from . import sema as S
from .values import ArrayListV, ArrayV, Method, TileV, is_const

_BINARY = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "truediv", "floordiv": "floordiv",
           "mod": "mod", "pow": "pow", "and": "and", "or": "or", "xor": "xor", "lshift": "shl",
           "rshift": "shr", "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge"}


class _Proxy:
    """A run-time value (tile, array, list of arrays, bound method) seen from static_eval's Python."""
    __slots__ = ("_low", "_v")

    def __init__(self, low, v):
        self._low, self._v = low, v

    def __getattr__(self, attr):
        v = self._v
        if isinstance(v, TileV):
            if attr in ("shape", "dtype", "ndim"):
                return getattr(v, attr)
            if attr == "T":
                return _wrap(self._low, B.transpose(self._low.b, v))
            if attr in B.TILE_METHODS:
                return _Proxy(self._low, Method(B.TILE_METHODS[attr], v))
        if isinstance(v, ArrayV):
            if attr == "shape":
                return _wrap(self._low, S.array_shape(self._low.b, v))
            if attr in ("dtype", "ndim"):
                return getattr(v, attr)
        raise AttributeError(f"{type(v).__name__} has no attribute '{attr}' in static_eval")

    def __call__(self, *args, **kwargs):
        if not isinstance(self._v, Method):
            raise TypeError("this value is not callable")
        return _wrap(self._low, self._v.fn(self._low.b, self._v.obj, *_unwrap(list(args)), **_unwrap(kwargs)))

    def __getitem__(self, idx):
        if isinstance(self._v, ArrayListV) and is_const(_unwrap(idx)):
            return _wrap(self._low, self._v.items[_unwrap(idx)])
        raise TypeError("static_eval can index lists of arrays with compile-time ints only")

    def __len__(self):
        if isinstance(self._v, ArrayListV):
            return len(self._v.items)
        if isinstance(self._v, TileV) and self._v.ndim:
            return self._v.shape[0]
        raise TypeError("len() of a scalar")

    def __bool__(self):
        raise TypeError("the truth of a run-time value is not known at compile time")

    def __neg__(self):
        return _wrap(self._low, S.unary(self._low.b, "neg", self._v))

    def __invert__(self):
        return _wrap(self._low, S.unary(self._low.b, "invert", self._v))

    def __abs__(self):
        return _wrap(self._low, S.unary(self._low.b, "abs", self._v))

    def __pos__(self):
        return self

    def __matmul__(self, other):
        return _wrap(self._low, B.matmul(self._low.b, self._v, _unwrap(other)))

    def __rmatmul__(self, other):
        return _wrap(self._low, B.matmul(self._low.b, _unwrap(other), self._v))

    __hash__ = object.__hash__


def _binary_method(fn, reflected):
    def method(self, other):
        x, y = (_unwrap(other), self._v) if reflected else (self._v, _unwrap(other))
        return _wrap(self._low, S.binary(self._low.b, fn, x, y))
    return method


for _name, _fn in _BINARY.items():
    setattr(_Proxy, f"__{_name}__", _binary_method(_fn, False))
    if _name not in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(_Proxy, f"__r{_name}__", _binary_method(_fn, True))


def _wrap(low, v):
    if isinstance(v, tuple):
        return tuple(_wrap(low, e) for e in v)
    return v if is_const(v) else _Proxy(low, v)


def _unwrap(v):
    if isinstance(v, _Proxy):
        return v._v
    if isinstance(v, tuple):
        return tuple(_unwrap(e) for e in v)
    if isinstance(v, list):
        return [_unwrap(e) for e in v]
    if isinstance(v, dict):
        return {k: _unwrap(e) for k, e in v.items()}
    return v


def static_eval(low, node):
    """Evaluate the AST expression `node` as Python in the lowering `low`'s scope; the value, with
    proxies turned back into the tile values they stand for."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.NamedExpr):
            raise TileStaticEvalError("static_eval's expression must not assign (:=)", low.src.loc(sub))
    scope = dict(low.src.globals)
    scope.update(low.src.closure)
    scope.update({k: _wrap(low, v) for k, v in low.vars.items() if isinstance(k, str)})
    expr = ast.Expression(body=node)
    code = compile(ast.fix_missing_locations(expr), low.src.loc(node)[0], "eval")
    try:
        return _unwrap(eval(code, scope))  # noqa: S307 - the kernel author's own expression
    except TileError:
        raise
    except Exception as e:
        raise TileStaticEvalError(f"static_eval: {type(e).__name__}: {e}", low.src.loc(node)) from None


__all__ = ["static_eval"]
