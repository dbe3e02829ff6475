"""`@tw.kernel`: the Kernel object, its parameters, and specialisation (argument facts -> Tile IR)."""
from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass

from ..errors import TileError, TileTypeError
from ..ir import Builder, Function, optimize, verify
from ..ir.dtypes import DType
from ..ir.types import ArrayType, scalar
from ..language import Constant, ConstantAnnotation, ScalarAnnotation, _int_width_name
from .limits import check_tile_sizes
from .lowering import Lowering
from .sema import array_shape
from .source import function_source
from .values import ArrayListV, ArrayV, TileV


@dataclass(frozen=True)
class ArraySpec:
    """What specialisation knows about an array argument. The facts default to unknown (False): a
    backend compiles a unit stride in, so claiming one by default would be a wrong answer waiting."""
    dtype: DType
    ndim: int
    unit_stride: bool = False  # innermost stride is one element
    aligned: bool = False      # data pointer is 16-byte aligned


@dataclass(frozen=True)
class ArrayListSpec:
    items: tuple


@dataclass(frozen=True)
class ScalarSpec:
    dtype: DType


@dataclass(frozen=True)
class ConstSpec:
    value: object
    kind: type = None  # 1, 1.0 and True compare equal but specialise differently (promotion differs)

    def __post_init__(self):
        if self.kind is None:
            object.__setattr__(self, "kind", type(self.value))


class Kernel:
    """A tile program. Launch it with `tw.launch(stream, grid, kernel, args)`; calling it raises."""

    def __init__(self, fn, **hints):
        self.fn = fn
        self.hints = hints
        self.__name__ = fn.__name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        self.__tile_function__ = fn  # what a call from inside another kernel inlines (lowering.py)
        self.signature = inspect.signature(fn)
        try:  # read the source now, so edits to the file after decoration cannot skew what runs
            function_source(fn)
        except TileError:
            pass  # reported, with its reason, at the first launch
        self._constant = None
        self._ir_cache = {}
        self.runtime_cache = {}  # (key, backend) -> executable; kept here so dispatch is one dict lookup

    def __repr__(self):
        return f"<tw.kernel {self.fn.__module__}.{self.fn.__qualname__}>"

    def __call__(self, *args, **kwargs):
        raise TileError(f"kernel '{self.__name__}' cannot be called directly; launch it with "
                        f"tw.launch(stream, grid, {self.__name__}, args)")

    def replace_hints(self, **hints):
        """cuTile's `kernel.replace_hints(num_ctas=..., occupancy=...)`: the same kernel with other hints."""
        return Kernel(self.fn, **{**self.hints, **hints})

    @property
    def constant_params(self):
        """Compile-time parameters as {name: annotated type, None for any}: `tw.Constant[T]`, a bare
        `tw.Constant`, and cuTile's `Annotated[T, ConstantAnnotation()]` (strings are evaluated)."""
        if self._constant is None:
            self._read_annotations()
        return self._constant

    @property
    def int64_scalars(self):
        """Runtime scalar parameters annotated `ScalarInt64` (always int64, as in cuTile)."""
        if self._constant is None:
            self._read_annotations()
        return self._int64

    def _read_annotations(self):
        try:
            hints = typing.get_type_hints(self.fn, include_extras=True)
        except Exception:
            hints = {}
            for name, p in self.signature.parameters.items():
                a = p.annotation
                if isinstance(a, str):
                    try:
                        a = eval(a, self.fn.__globals__)  # noqa: S307 - the user's own annotation
                    except Exception:
                        continue
                hints[name] = a
        consts, int64 = {}, set()
        for n, a in hints.items():
            if a is Constant or isinstance(a, ConstantAnnotation):
                consts[n] = getattr(a, "type", None)
            elif typing.get_origin(a) is typing.Annotated:
                inner, *meta = typing.get_args(a)
                if any(isinstance(m, ConstantAnnotation) for m in meta):
                    consts[n] = inner if isinstance(inner, type) else None
                elif any(isinstance(m, ScalarAnnotation) and _int_width_name(m.dtype) == "int64" for m in meta):
                    int64.add(n)
        self._constant, self._int64 = consts, frozenset(int64)

    def lower(self, specs: tuple) -> Function:
        """Tile IR for one specialisation (cached)."""
        fn = self._ir_cache.get(specs)
        if fn is None:
            try:
                fn = _build(self, specs)
            except TileError as e:
                raise _user_facing(e) from _internal_cause(e)
            self._ir_cache[specs] = fn
        return fn


def _user_facing(e: TileError) -> TileError:
    """The error as the user should see it: no compiler frames, no chained internal exceptions, and no
    private subclass (NeedsUnroll) in place of its public class."""
    public = next(c for c in type(e).__mro__ if c.__module__ == TileError.__module__)
    if public is not type(e):
        e = public(e.message, e.loc)
    e.__context__ = None
    return e.with_traceback(None)


def _internal_cause(e: TileError):
    """Compiler bugs keep their cause so the report shows where they happened; user errors have none."""
    return e.__cause__ if e.internal else None


def _build(kernel: Kernel, specs) -> Function:
    names = list(kernel.signature.parameters)
    types_, pnames, binders = [], [], []
    for name, spec in zip(names, specs):
        if isinstance(spec, ArraySpec):  # a 0-d array is passed as a one-element 1-d one (values.ArrayV)
            types_.append(ArrayType(spec.dtype, max(spec.ndim, 1), spec.unit_stride))
            pnames.append(name)
            binders.append((name, "array", 1))
        elif isinstance(spec, ArrayListSpec):
            for i, s in enumerate(spec.items):
                types_.append(ArrayType(s.dtype, max(s.ndim, 1), s.unit_stride))
                pnames.append(f"{name}.{i}")
            binders.append((name, "array_list", len(spec.items)))
        elif isinstance(spec, ScalarSpec):
            types_.append(scalar(spec.dtype))
            pnames.append(name)
            binders.append((name, "scalar", 1))
        else:
            binders.append((name, "const", 0))
    fn = Function(kernel.__name__, types_, pnames)
    fn.meta["params"] = binders
    b = Builder(fn.body)
    env, args = {}, iter(fn.params)
    for (name, kind, n), spec in zip(binders, specs):
        if kind == "array":
            env[name] = ArrayV(next(args), name, zero_d=spec.ndim == 0)
        elif kind == "array_list":
            env[name] = ArrayListV([ArrayV(next(args), f"{name}[{i}]", zero_d=s.ndim == 0)
                                    for i, s in zip(range(n), spec.items)], name)
        elif kind == "scalar":
            env[name] = TileV(next(args))
        else:
            env[name] = spec.value
    for v in env.values():  # shapes are read once at entry so every region may use them
        for a in (v.items if isinstance(v, ArrayListV) else [v] if isinstance(v, ArrayV) else []):
            array_shape(b, a)
    src = function_source(kernel.fn)
    low = Lowering(src, b, env)
    low.run_body(src.tree.body)
    b.emit("return", [])
    check_tile_sizes(fn)  # before the passes, so a tile they would drop as dead is refused all the same
    optimize(fn)
    try:
        verify(fn)
    except Exception as e:  # a verifier failure is our bug, not the user's: say so plainly
        raise TileTypeError(f"internal error: kernel '{kernel.__name__}' produced malformed IR ({e}); "
                            "please report it") from None
    return fn


def kernel(fn=None, /, **hints):
    """Decorator: `@tw.kernel` or `@tw.kernel(num_ctas=..., occupancy=..., opt_level=...)`."""
    if fn is None:
        return lambda f: Kernel(f, **hints)
    if isinstance(fn, Kernel):
        return fn
    if not inspect.isfunction(fn):
        raise TileTypeError(f"@tw.kernel decorates a function, got {type(fn).__name__}")
    return Kernel(fn, **hints)


__all__ = ["Kernel", "kernel", "ArraySpec", "ArrayListSpec", "ScalarSpec", "ConstSpec", "TileTypeError"]
