"""Random tile programs, as Python source, for the differential fuzzer (test_fuzz_differential.py).

`programs()` is a hypothesis strategy that writes one kernel: loads from 1-3 input arrays, a random
DAG of element-wise ops, casts, reductions, scans, shape ops and constants, sometimes inside a
runtime `for` loop or under an `if` on the block id, ending in stores to output arrays. The
generator tracks every value's shape and dtype with the library's own promotion rules, so the
programs are valid by construction, and it tracks which values are not bit-exact between backends:

- `err`: the rounding errors a value may carry, as (source, dtype) terms: a transcendental
  function, or one more rounding ("round") of an inexact value. Inexact values only flow through
  ops that keep a *relative* error bound (mul, the numerator of /, neg, abs, min/max, where
  branches, shape ops, float casts); never into comparisons, integer casts, add/sub (cancellation)
  or another transcendental function, where a last-ulp difference could legitimately grow.
- float `sum`/`cumsum` results are reassociated by the cpu backend, so their error is bounded by
  the sum of magnitudes: each one is stored directly, next to `sum(abs(x))` as its bound.
- `zamb`: a float that may be a zero of unspecified sign (min/max of 0.0 and -0.0, semantics.md);
  it compares with 0.0 == -0.0 and never reaches an op that tells the zeros apart (a divisor, pow).

Programs also call helper functions (module-level `def`s the generator writes, inlined by the front
end, sometimes nested or called twice), and some carry a long chain: one value updated by a
`tw.static_iter` loop of up to thousands of steps, which the code generators must not recurse over.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

from tilewise.ir import dtypes as D

INPUT_DTYPES = ["float32", "float64", "float16", "int32", "int64", "uint8", "bool_"]
CAST_DTYPES = INPUT_DTYPES + ["int8"]
ARRAY_DIMS = [1, 2, 3, 5, 7, 8, 13, 16, 17, 33, 64, 100]
TILE_DIMS = [1, 2, 4, 8, 16, 32, 64]
ODD_TILE_DIMS = [3, 5, 6]  # tilewise allows any tile size, not only powers of two
TRANSCENDENTAL = ["exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "rsqrt", "sin", "cos", "tan", "tanh",
                  "sinh", "cosh", "asin", "acos", "atan", "sigmoid", "erf"]
EXACT_UNARY = ["neg", "abs", "floor", "ceil", "trunc", "round", "sqrt", "invert", "isnan", "isinf", "isfinite"]
FLOAT_PADDINGS = ["ZERO", "NEG_ZERO", "NAN", "POS_INF", "NEG_INF", "UNDETERMINED"]
OPERATORS = {"add": "+", "sub": "-", "mul": "*", "truediv": "/", "floordiv": "//", "mod": "%", "pow": "**",
             "and": "&", "or": "|", "xor": "^", "shl": "<<", "shr": ">>", "eq": "==", "ne": "!=", "lt": "<",
             "le": "<=", "gt": ">", "ge": ">="}
FUNCTIONS = {"add": "add", "sub": "sub", "mul": "mul", "truediv": "truediv", "floordiv": "floordiv", "mod": "mod",
             "pow": "pow", "and": "bitwise_and", "or": "bitwise_or", "xor": "bitwise_xor", "shl": "left_shift",
             "shr": "right_shift", "eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
             "gt": "greater", "ge": "greater_equal", "minimum": "minimum", "maximum": "maximum", "atan2": "atan2"}
COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
BUILTIN_SCALARS = ("b0", "b1", "lin", "n0", "f0")


@dataclass
class Val:
    name: str
    shape: tuple
    dtype: D.DType
    err: tuple = ()       # (source, dtype name) rounding terms; () means bit-exact
    zamb: bool = False
    used: bool = False

    @property
    def exact(self):
        return not self.err


@dataclass
class Array:
    name: str
    shape: tuple          # the shape the kernel sees
    dtype: str
    view: str             # "plain", "step2" (base[::2]), "rev" (base[::-1]) or "T" (base.T)


@dataclass
class Output(Array):
    err: tuple = ()
    zamb: bool = False
    bound: str | None = None  # float sum/cumsum: the output holding sum(|x|) over the same elements
    count: int = 0            # ...and how many elements each sum adds


@dataclass
class Program:
    source: str
    inputs: list
    outputs: list
    grid: tuple
    n0: int
    f0: float
    poison: bool
    seed: int
    emulate: bool = False
    notes: list = field(default_factory=list)


def _eps(dt):
    return float(np.finfo(dt.np).eps)


@dataclass
class Helper:
    name: str
    params: list          # Val of each parameter (exact, not zamb)
    result: Val


class Gen:
    def __init__(self, draw, skip=frozenset()):
        self.draw, self.skip = draw, skip
        self.lines = []
        self.indent = 1
        self.scopes = [[]]
        self.count = 0
        self.outputs = []
        self.in_loop = False
        self.helpers, self.helper_source, self.helper_depth = [], [], 0

    # ---- drawing ----
    def int(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def pick(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def pick_op(self, names):
        names = [n for n in names if n not in self.skip]
        return self.pick(names) if names else None

    def coin(self, percent):
        return self.draw(st.integers(0, 99)) < percent

    # ---- emitting ----
    def emit(self, text):
        self.lines.append("    " * self.indent + text)

    def fresh(self, prefix="v"):
        self.count += 1
        return f"{prefix}{self.count}"

    def define(self, expr, shape, dtype, err=(), zamb=False):
        v = Val(self.fresh(), tuple(shape), dtype, tuple(err), bool(zamb and dtype.is_float))
        self.emit(f"{v.name} = {expr}")
        self.scopes[-1].append(v)
        return v

    def values(self, pred=lambda v: True):
        return [v for scope in self.scopes for v in scope if pred(v)]

    def pick_value(self, pred=lambda v: True, scalars_ok=True, use=True):
        vals = self.values(pred)
        tiles = [v for v in vals if v.name not in BUILTIN_SCALARS]
        if tiles and (not scalars_ok or self.coin(85)):
            vals = tiles
        if not vals:
            return None
        # recent values are likelier, so the DAG grows deep rather than wide (and shrinks towards them)
        i, j = self.int(0, len(vals) - 1), self.int(0, len(vals) - 1)
        v = vals[-1 - min(i, j)]
        v.used |= use
        return v

    # ---- literals ----
    def literal(self, dt, small=False):
        """A Python number that is valid next to a tile of dtype `dt` (weak promotion)."""
        kind = self.pick(["int", "int", "float", "bool"] if not dt.is_float else ["float", "float", "int"])
        if kind == "bool":
            return repr(self.coin(50)), D.weak_promote(dt, True)
        if kind == "int":
            target = D.weak_promote(dt, 1)
            if target.is_int:
                info = np.iinfo(target.np)
                choices = [0, 1, 2, 3, 7, -1, -5, int(info.max), int(info.min)] if not small else [0, 1, 2, 3, 5]
                value = self.pick([c for c in choices if info.min <= c <= info.max])
            else:
                value = self.pick([0, 1, 2, -3, 100])
            return f"({value})", target
        value = self.pick([0.5, -1.5, 3.0, 0.0, -0.0, 1e30, 2.5e-5, 100.0, -7.25])
        return f"({value!r})", D.weak_promote(dt, 1.0)

    # ---- program parts ----
    def loads(self, inputs, where):
        for arr in inputs:
            rank = len(arr.shape)
            shape = tuple(self.pick(TILE_DIMS if self.coin(90) else ODD_TILE_DIMS) for _ in range(rank))
            while math.prod(shape) > 256:
                shape = (shape[0] // 2,) + shape[1:]
            index = tuple(self.pick(where) for _ in range(rank))
            dt = D.from_name(arr.dtype)
            pad = self.pick(FLOAT_PADDINGS if dt.is_float else ["ZERO", "UNDETERMINED"])
            extra = f", padding_mode=tw.PaddingMode.{pad}" if pad != "UNDETERMINED" or self.coin(50) else ""
            if rank == 2 and self.coin(25):
                extra += ", order=(1, 0)"
            idx = "(" + ", ".join(index) + ("," if rank == 1 else "") + ")"
            self.define(f"tw.load({arr.name}, index={idx}, shape={shape}{extra})", shape, dt)

    def step(self):
        kinds = ["binary"] * 6 + ["unary"] * 3 + ["where"] * 2 + ["cast"] * 2 + ["reduce"] * 2 + ["shape"] * 2 + \
            ["const", "scan"]
        if not self.in_loop:
            kinds += ["loop", "if", "transcendental", "transcendental"]
        if self.helper_depth < 2:
            kinds += ["helper"]
        getattr(self, "op_" + self.pick(kinds))()

    def op_helper(self):
        """Call a helper function: one written before whose parameters fit values we have, or a new one
        of 1-3 steps over 1-2 parameters (no loops, ifs, stores or transcendental functions in it; it may
        call other helpers)."""
        fits = lambda p: lambda v: v.exact and not v.zamb and v.shape == p.shape and v.dtype is p.dtype  # noqa: E731
        if self.helpers and self.coin(40):
            h = self.pick(self.helpers)
            args = [self.pick_value(fits(p), scalars_ok=False) for p in h.params]
            if all(args):
                self.define(f"{h.name}({', '.join(a.name for a in args)})", h.result.shape, h.result.dtype,
                            h.result.err, h.result.zamb)
                return
        args = [self.pick_value(lambda v: v.exact and not v.zamb, scalars_ok=False) for _ in range(self.int(1, 2))]
        if not all(args):
            return
        name = self.fresh("helper")
        params = [Val(self.fresh("p"), a.shape, a.dtype) for a in args]
        saved = self.lines, self.indent, self.scopes, self.in_loop
        self.lines, self.indent, self.scopes, self.in_loop = [], 1, [list(params)], True
        self.helper_depth += 1
        for _ in range(self.int(1, 3)):
            self.step()
        result = self.scopes[-1][-1]
        self.emit(f"return {result.name}")
        body = self.lines
        self.helper_depth -= 1
        self.lines, self.indent, self.scopes, self.in_loop = saved
        self.helper_source.append(f"def {name}({', '.join(p.name for p in params)}):\n" + "\n".join(body) + "\n")
        self.helpers.append(Helper(name, params, result))
        self.define(f"{name}({', '.join(a.name for a in args)})", result.shape, result.dtype, result.err, result.zamb)

    def op_chain(self, depth):
        """A value updated `depth` times by an unrolled loop: `depth` to 3 * `depth` element-wise ops
        (plus casts) in one chain. Each update is one correctly rounded op (or a where), so the chain
        stays bit-exact."""
        acc = self.pick_value(lambda v: v.exact and not v.zamb and not v.dtype.is_bool, scalars_ok=False)
        if acc is None:
            return
        other = self.pick_value(lambda v: v.exact and not v.zamb and _broadcasts_into(v.shape, acc.shape))
        o = other.name if other is not None else "(0.5)" if acc.dtype.is_float else "(3)"
        dt = f"tw.{acc.dtype.name}"
        updates = {"add": f"tw.astype({{c}} + {o}, {dt})", "mul": f"tw.astype({{c}} * {o}, {dt})",
                   "max": f"tw.astype(tw.maximum({{c}}, {o}), {dt})", "neg": "-{c}",
                   "where": f"tw.astype(tw.where({{c}} > {o}, {o}, {{c}} + 1), {dt})"}
        if not acc.dtype.is_float:
            updates["xor"] = f"tw.astype({{c}} ^ {o}, {dt})"
        if acc.dtype.kind == "u":
            del updates["neg"]
        name = self.fresh("chain")
        self.emit(f"{name} = {acc.name}")
        self.emit(f"for _ in tw.static_iter(range({depth})):")
        for _ in range(self.int(1, 3 if depth < 1000 else 1)):  # a longer chain costs seconds to compile
            self.emit("    " + f"{name} = " + self.pick(sorted(updates.values())).format(c=name))
        self.scopes[-1].append(Val(name, acc.shape, acc.dtype, zamb=acc.dtype.is_float))

    def op_binary(self):
        fn = self.pick_op(FUNCTIONS)
        if fn is None:
            return
        a = self.pick_value()
        if fn in ("add", "sub", "floordiv", "mod", "pow", "atan2", "and", "or", "xor", "shl", "shr") or \
                fn in COMPARE:
            if not a.exact:
                a = self.pick_value(lambda v: v.exact)
        sensitive = fn in ("truediv", "floordiv", "mod", "pow", "atan2")
        if sensitive and a.zamb and fn != "truediv":
            return
        if self.coin(30):
            lit, dt = self.literal(a.dtype, small=fn in ("shl", "shr", "pow"))
            operands, other = [a.name, lit], None
            shape = a.shape
            if self.coin(40) and fn not in ("truediv",):
                operands.reverse()
        else:
            other = self.pick_value(lambda v: _broadcasts(a.shape, v.shape) and (v.exact or fn in (
                "mul", "minimum", "maximum")) and not (v.zamb and sensitive))
            if other is None:
                return
            dt = D.promote(a.dtype, other.dtype)
            shape = tuple(np.broadcast_shapes(a.shape, other.shape))
            operands = [a.name, other.name]
        if fn in ("truediv", "atan2") and not dt.is_float:
            dt = D.float32
        if fn in ("and", "or", "xor") and dt.is_float:
            return
        if fn in ("shl", "shr") and not dt.is_int:
            return
        if fn in ("add", "sub", "mul", "floordiv", "mod", "pow") and dt.is_bool:
            dt = D.int32
        srcs = [a] + ([other] if other is not None else [])
        err = ()
        if any(not v.exact for v in srcs):
            err = sum((v.err for v in srcs), ()) + ((("round", dt.name),) if fn in ("mul", "truediv") else ())
        if fn in ("pow", "atan2") and dt.is_float:
            err = ((fn, dt.name),)
        zamb = any(v.zamb for v in srcs) or (fn in ("minimum", "maximum"))
        if fn in COMPARE:
            dt, zamb = D.bool_, False
        if fn in OPERATORS and self.coin(70):
            expr = f"{operands[0]} {OPERATORS[fn]} {operands[1]}"
        elif fn in ("minimum", "maximum") and self.coin(30):
            expr = f"{fn[:3]}({operands[0]}, {operands[1]})"
        else:
            expr = f"tw.{FUNCTIONS[fn]}({operands[0]}, {operands[1]})"
        self.define(expr, shape, dt, err, zamb)

    def op_unary(self):
        fn = self.pick_op(EXACT_UNARY)
        if fn is None:
            return
        a = self.pick_value(lambda v: v.exact or fn in ("neg", "abs"))
        dt = a.dtype
        if fn == "sqrt" and not dt.is_float:
            dt = D.float32
        if fn in ("neg", "abs") and dt.is_bool:
            dt = D.int32
        if fn == "invert" and dt.is_float:
            return
        if fn in ("isnan", "isinf", "isfinite"):
            dt = D.bool_
        if fn == "neg" and self.coin(50):
            expr = f"-{a.name}"
        elif fn == "invert" and self.coin(50):
            expr = f"~{a.name}"
        elif fn == "abs" and self.coin(50):
            expr = f"abs({a.name})"
        else:
            expr = f"tw.{ {'neg': 'negative', 'invert': 'bitwise_not'}.get(fn, fn)}({a.name})"
        self.define(expr, a.shape, dt, a.err, a.zamb and dt.is_float)

    def op_transcendental(self):
        fn = self.pick_op(TRANSCENDENTAL)
        if fn is None:
            return
        a = self.pick_value(lambda v: v.exact and not (v.zamb and fn == "rsqrt"))
        dt = a.dtype if a.dtype.is_float else D.float32
        self.define(f"tw.{fn}({a.name})", a.shape, dt, ((fn, dt.name),))

    def op_where(self):
        c = self.pick_value(lambda v: v.exact)
        parts, srcs, shapes = [], [], [c.shape]
        for _ in range(2):
            v = self.pick_value() if self.coin(75) else None
            if v is not None and _broadcasts(c.shape, v.shape):
                parts.append(v.name)
                srcs.append(v)
                shapes.append(v.shape)
            else:
                parts.append(None)
        tiles = [v.dtype for v in srcs]
        if not tiles:
            dt = D.int32
            parts = ["1", "2"]
        else:
            dt = tiles[0] if len(tiles) == 1 else D.promote(*tiles)
            for i, p in enumerate(parts):
                if p is None:
                    parts[i], dt = self.literal(dt)
        try:
            shape = tuple(np.broadcast_shapes(*shapes))
        except ValueError:
            return
        err = sum((v.err for v in srcs), ())
        if err and any(v.dtype is not dt for v in srcs):
            err += (("round", dt.name),)
        zamb = any(v.zamb for v in srcs) or dt.is_float and "(-0.0)" in parts
        self.define(f"tw.where({c.name}, {parts[0]}, {parts[1]})", shape, dt, err, zamb)

    def op_cast(self):
        a = self.pick_value()
        target = D.from_name(self.pick(CAST_DTYPES))
        if not a.exact and not target.is_float:
            return
        err = a.err + ((("round", target.name),) if a.err else ())
        expr = f"{a.name}.astype(tw.{target.name})" if self.coin(50) else f"tw.astype({a.name}, tw.{target.name})"
        self.define(expr, a.shape, target, err, a.zamb and target.is_float)

    def op_reduce(self):
        fn = self.pick_op(["sum", "sum", "prod", "max", "min", "argmax", "argmin"])
        if fn is None:
            return
        a = self.pick_value(lambda v: len(v.shape) >= 1 and (v.exact or fn in ("max", "min")))
        if a is None:
            return
        rank = len(a.shape)
        axis = self.pick([None] + list(range(rank)) + ([(0, 1)] if rank == 2 and fn not in ("argmax", "argmin")
                                                      else []))
        keepdims = self.coin(50)
        axes = tuple(range(rank)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
        if keepdims:
            shape = tuple(1 if i in axes else s for i, s in enumerate(a.shape))
        else:
            shape = tuple(s for i, s in enumerate(a.shape) if i not in axes)
        count = math.prod(a.shape[i] for i in axes)
        dt = D.int32 if fn in ("argmax", "argmin") or (a.dtype.is_bool and fn in ("sum", "prod")) else a.dtype
        args = f"{a.name}" + (f", axis={axis}" if axis is not None or self.coin(30) else "") + \
            (", keepdims=True" if keepdims else "")
        expr = f"tw.{fn}({args})"
        if fn == "sum" and dt.is_float:
            if self.in_loop:
                return
            self.sum_output(expr, f"tw.sum(tw.abs({a.name})" + args[len(a.name):] + ")", shape, dt, count)
            return
        err = a.err
        if fn == "prod" and dt.is_float:
            err = (("prod", dt.name),) * count
        self.define(expr, shape, dt, err, a.zamb or fn in ("max", "min"))

    def op_scan(self):
        fn = self.pick_op(["cumsum", "cumsum", "cumprod"])
        if fn is None:
            return
        a = self.pick_value(lambda v: len(v.shape) >= 1 and v.exact)
        if a is None:
            return
        axis = self.int(0, len(a.shape) - 1)
        dt = D.int32 if a.dtype.is_bool else a.dtype
        expr = f"tw.{fn}({a.name}, axis={axis})" if self.coin(70) or axis else f"{a.name}.{fn}()"
        if fn == "cumsum" and dt.is_float:
            if self.in_loop:
                return
            self.sum_output(expr, f"tw.cumsum(tw.abs({a.name}), axis={axis})", a.shape, dt, a.shape[axis])
            return
        err = (("prod", dt.name),) * a.shape[axis] if dt.is_float else ()
        self.define(expr, a.shape, dt, err, a.zamb)

    def op_shape(self):
        a = self.pick_value()
        s, n = a.shape, math.prod(a.shape)
        options = []
        if len(s) == 2:
            options += [(f"{a.name}.T", s[::-1]), (f"tw.transpose({a.name})", s[::-1]),
                        (f"tw.permute({a.name}, (1, 0))", s[::-1]), (f"tw.reshape({a.name}, ({n},))", (n,)),
                        (f"{a.name}.reshape((-1,))", (n,)), (f"tw.reshape({a.name}, {s[::-1]})", s[::-1]),
                        (f"{a.name}[:, None]", (s[0], 1, s[1]))]
            if s[1] == 1:
                options.append((f"tw.broadcast_to({a.name}, ({s[0]}, 4))", (s[0], 4)))
        if len(s) == 1:
            options += [(f"{a.name}[:, None]", (n, 1)), (f"{a.name}[None, :]", (1, n)),
                        (f"tw.expand_dims({a.name}, 0)", (1, n)), (f"tw.broadcast_to({a.name}, (3, {n}))", (3, n))]
            if n % 2 == 0:
                options.append((f"tw.reshape({a.name}, ({n // 2}, 2))", (n // 2, 2)))
        if len(s) == 0:
            options += [(f"tw.broadcast_to({a.name}, (4,))", (4,)), (f"tw.reshape({a.name}, (1, 1))", (1, 1))]
        if len(s) == 3:
            options += [(f"tw.permute({a.name}, (2, 0, 1))", (s[2], s[0], s[1])),
                        (f"tw.reshape({a.name}, ({s[0] * s[1]}, {s[2]}))", (s[0] * s[1], s[2]))]
        expr, shape = self.pick(options)
        self.define(expr, shape, a.dtype, a.err, a.zamb)

    def op_const(self):
        kind = self.pick(["full", "arange", "zeros", "ones"] + ([] if self.helper_depth else ["scalar"]))
        shape = self.pick([(4,), (8,), (4, 1), (1, 8), (2, 4)])
        like = self.pick_value(lambda v: len(v.shape) >= 1, scalars_ok=False, use=False)
        if like is not None and self.coin(60):  # a shape that broadcasts against a tile we have
            shape = tuple(1 if self.coin(30) else s for s in like.shape)
        dt = D.from_name(self.pick(CAST_DTYPES))
        if kind == "arange":
            n = self.pick([1, 4, 8, 16])
            if dt.is_bool or dt.name == "uint8" and n > 255:
                dt = D.int32
            self.define(f"tw.arange({n}, dtype=tw.{dt.name})", (n,), dt)
        elif kind in ("zeros", "ones"):
            self.define(f"tw.{kind}({shape}, dtype=tw.{dt.name})", shape, dt)
        elif kind == "full":
            lit, _ = self.literal(dt)
            if dt.is_int and "." in lit:
                lit = "(3)"
            self.define(f"tw.full({shape}, {lit}, dtype=tw.{dt.name})", shape, dt, zamb=lit == "(-0.0)")
        else:
            expr = self.pick(["b0 * 3 + 1", "lin - 2", "b1 * b0", "n0 + b2", "lin % 3", "f0 * 2"])
            self.define(expr, (), D.float32 if "f0" in expr else D.int32)

    def sum_output(self, expr, bound_expr, shape, dt, count):
        """A float sum: stored directly, next to the sum of magnitudes that bounds its error."""
        v = self.define(expr, shape, dt)
        self.scopes[-1].remove(v)
        b = self.define(bound_expr, shape, dt)
        self.scopes[-1].remove(b)
        out_b = self.store(b, err=(("sum", dt.name),) * count)
        self.store(v, bound=out_b, count=count)

    def op_loop(self):
        acc = self.pick_value(lambda v: v.exact)
        bounds = self.pick(["n0", "b0 + 1", "3", "1, n0 + 2, 2", "lin % 3, 4", "n0, 0, -1"])
        carried = self.fresh("acc")
        self.emit(f"{carried} = {acc.name}")
        k = self.fresh("k")
        self.emit(f"for {k} in range({bounds}):")
        self.indent += 1
        self.scopes.append([Val(k, (), D.int32), Val(carried, acc.shape, acc.dtype, zamb=acc.zamb)])
        self.in_loop = True
        if self.coin(40):
            self.loads([self.pick(self.inputs)], [k, k, "b0", "0"])
        for _ in range(self.int(0, 2)):
            self.step()
        other = self.pick_value(lambda v: v.exact and _broadcasts_into(v.shape, acc.shape) and not v.zamb)
        fn = self.pick(["+", "*", "-", "^", "//", "max"]) if other is not None else None
        if fn == "^" and (acc.dtype.is_float or other.dtype.is_float):
            fn = "+"
        if fn is None:
            expr = f"{carried} + 1"
        elif fn == "max":
            expr = f"tw.maximum({carried}, {other.name})"
        else:
            expr = f"{carried} {fn} {other.name}"
        self.emit(f"{carried} = tw.astype({expr}, tw.{acc.dtype.name})")
        self.in_loop = False
        self.indent -= 1
        self.scopes.pop()
        self.scopes[-1].append(Val(carried, acc.shape, acc.dtype, zamb=acc.dtype.is_float))

    def op_if(self):
        cond = self.pick(["b0 % 2 == 0", "b1 < 1", "lin >= 2", "n0 > 1", "b0 == b1", "f0 > 0"])
        base = self.pick_value()
        name = self.fresh("w")
        self.emit(f"{name} = {base.name}")
        self.emit(f"if {cond}:")
        err, zamb = base.err, base.zamb
        for branch in range(self.int(1, 2)):
            if branch:
                self.emit("else:")
            self.indent += 1
            self.scopes.append([])
            for _ in range(self.int(0, 2)):
                self.step()
            v = self.pick_value(lambda v: _broadcasts_into(v.shape, base.shape) and (v.exact or base.dtype.is_float))
            if self.coin(20):
                self.store(v)
            self.emit(f"{name} = tw.broadcast_to(tw.astype({v.name}, tw.{base.dtype.name}), {base.shape})")
            err += v.err + ((("round", base.dtype.name),) if v.err and v.dtype is not base.dtype else ())
            zamb |= v.zamb
            self.scopes.pop()
            self.indent -= 1
        self.scopes[-1].append(Val(name, base.shape, base.dtype, err, zamb and base.dtype.is_float))

    def store(self, v, bound=None, count=0, err=None):
        """Store `v` at the block's own tile of a fresh output (blocks never write the same element)."""
        name = self.fresh("out")
        tile = v.shape if v.shape else (1,)
        dt = v.dtype
        if bound is None and err is None and self.coin(25):
            dt = D.from_name(self.pick(CAST_DTYPES))
            if (v.dtype.is_float and not dt.is_float) or (v.err and not dt.is_float):
                dt = v.dtype
        err = v.err + ((("round", dt.name),) if v.err and dt is not v.dtype else ()) if err is None else err
        if bound is None:
            partial = [self.int(0, t - 1) if self.coin(40) else 0 for t in tile]
            shape = (tile[0] * self.nblocks - partial[0],) + tuple(t - p for t, p in zip(tile[1:], partial[1:]))
            view = self.pick(["plain", "plain", "step2", "rev"] + (["T"] if len(shape) == 2 else []))
        else:  # a float sum shares its bound's layout, element for element
            shape, view, bound = bound.shape, bound.view, bound.name
        out = Output(name, shape, dt.name, view, err, v.zamb and dt.is_float, bound, count)
        self.outputs.append(out)
        idx = "(lin" + "".join(", 0" for _ in tile[1:]) + ("," if len(tile) == 1 else "") + ")"
        self.emit(f"tw.store({name}, index={idx}, tile={v.name})")
        return out


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _broadcasts_into(src, dst):
    return len(src) <= len(dst) and _broadcasts(src, dst) and tuple(np.broadcast_shapes(src, dst)) == tuple(dst)


@st.composite
def programs(draw, emulate_percent=0, skip=frozenset(), chain_percent=0, chain_depths=(4, 40, 300)):
    """`skip`: op names (as in FUNCTIONS' keys, EXACT_UNARY, TRANSCENDENTAL, or reduce/scan names) to leave out.
    `chain_percent` of the programs get one long chain (op_chain) of a depth from `chain_depths`."""
    g = Gen(draw, skip)
    grid = (g.int(1, 3), g.pick([1, 1, 2]), g.pick([1, 1, 2]))
    g.nblocks = math.prod(grid)
    inputs = []
    for i in range(g.int(1, 3)):
        rank = g.pick([1, 2, 2])
        shape = tuple(g.pick(ARRAY_DIMS) for _ in range(rank))
        view = g.pick(["plain", "plain", "step2", "rev"] + (["T"] if rank == 2 else []))
        inputs.append(Array(f"x{i}", shape, g.pick(INPUT_DTYPES), view))
    g.emit("b0 = tw.bid(0)")
    g.emit("b1 = tw.bid(1)")
    g.emit("b2 = tw.bid(2)")
    g.emit(f"lin = b0 + {grid[0]} * (b1 + {grid[1]} * b2)")
    g.scopes[0] += [Val(n, (), D.float32 if n == "f0" else D.int32) for n in BUILTIN_SCALARS]
    g.inputs = inputs
    g.loads(inputs, ["b0", "b1", "lin", "0", "0", "b0 - 1", "n0"])
    steps = g.int(2, 14)
    chain_at = g.int(0, steps) if g.coin(chain_percent) else -1
    for k in range(steps + 1):
        if k == chain_at:
            g.op_chain(g.pick(chain_depths))
        if k < steps:
            g.step()
    # store the DAG's sinks (values nothing used), most recent first, so that no op is dead code
    sinks = [v for v in g.scopes[0][5:] if not v.used][::-1]
    for i in range(g.int(1, 3)):
        g.store(sinks[i] if i < len(sinks) else g.pick_value(scalars_ok=False))
    params = ", ".join([a.name for a in inputs] + [o.name for o in g.outputs] + ["n0", "f0"])
    helpers = "".join(h + "\n\n" for h in g.helper_source)
    source = "import tilewise as tw\n\n\n" + helpers + "@tw.kernel\ndef fuzz_kernel(" + params + "):\n" + \
        "\n".join(g.lines) + "\n"
    return Program(source, inputs, g.outputs, grid, g.int(-1, 4), g.pick([0.5, -1.25, 3.0]), g.coin(30),
                   g.int(0, 2**32 - 1), g.coin(emulate_percent))
