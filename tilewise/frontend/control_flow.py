"""Structured control flow for the lowering: runtime `if`, `for` and `while` become IR ops whose
carried values are the Python names the branch or loop rebinds; constant conditions fold and constant
loops that need compile-time indices unroll."""
from __future__ import annotations

import ast
import builtins as py

from ..errors import TileError, TileSyntaxError, TileTypeError, TileValueError
from ..ir import dtypes as D
from ..ir.core import Block
from ..ir.types import scalar
from . import builtins as B
from . import sema as S
from .values import TileV, describe, is_const, is_py_scalar

MAX_UNROLL = 4096
RETURN = "__return__"  # the name a `return` binds, so an if can merge returns like any variable

class NeedsUnroll(TileTypeError):
    """A loop variable was used where only a compile-time value will do (e.g. `As[g]`)."""


def _assigned_names(stmts):
    names = set()
    for stmt in stmts:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


def _last_assignment(stmts, name, default):
    """The last statement in `stmts` that binds `name`: where a loop-carried type error is reported."""
    best = default
    for stmt in stmts:
        for node in ast.walk(stmt):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            if any(isinstance(t, ast.Name) and t.id == name for tg in targets for t in ast.walk(tg)):
                if best is default or (node.lineno, node.col_offset) > (best.lineno, best.col_offset):
                    best = node
    return best


def _ends_with_return(stmts):
    return bool(stmts) and isinstance(stmts[-1], ast.Return)



def _same_const(a, b):
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:
        return a is b


def _scalar_type(dt):
    return scalar(dt)



class ControlFlow:
    """Mixin of Lowering: the statements that carry values across regions."""


    def _const_test(self, test):
        try:
            with self.b.at(Block()):  # a probe: its ops (an atomic, say) must not run twice
                return is_const(self.expr(test))
        except TileError:
            return False

    def stmt_If(self, node):
        cond = self.expr(node.test)
        if is_const(cond):
            return self.run_body(node.body if cond else node.orelse)
        cond = S.to_bool(self.b, S.require_tile(cond, "if condition"))
        if cond.shape != ():
            self.fail(node.test, TileTypeError, f"if needs a scalar condition, got {describe(cond)}; "
                      "use tw.where for element-wise choice")
        before = dict(self.vars)
        outcomes = []
        for body in (node.body, node.orelse):
            block = Block()
            self.vars = dict(before)
            with self.b.at(block):
                self.run_body(body)
            outcomes.append((block, self.vars))
        self.vars = before
        names = [n for n in dict.fromkeys(list(outcomes[0][1]) + list(outcomes[1][1]))
                 if any(v.get(n, before.get(n)) is not before.get(n) for _, v in outcomes)]
        results = []
        for n in names:
            vals = [v.get(n) for _, v in outcomes]
            if any(n not in v for _, v in outcomes):
                self.vars.pop(n, None)  # defined on one path only: not usable after the if
                self.scoped_out[n] = (f"'{n}' is assigned on only one path of the runtime if at line "
                                      f"{self.src.loc(node)[1]}; assign it before the if (or in both branches)")
                continue
            if all(is_const(v) for v in vals) and _same_const(*vals):
                self.vars[n] = vals[0]
                continue
            results.append((n, self._unify(node, n, vals, "the branches of this if")))
        yields = [[], []]
        for n, t in results:
            for i, (block, v) in enumerate(outcomes):
                with self.b.at(block):
                    yields[i].append(self._materialize(node, n, v[n], t).v)
        for i, (block, _) in enumerate(outcomes):
            with self.b.at(block):
                self.b.emit("yield", yields[i])
        op = self.b.region_op("if", [cond.v], [t for _, t in results], [outcomes[0][0], outcomes[1][0]])
        for (n, _), r in zip(results, op.results):
            self.vars[n] = TileV(r)
        if RETURN in self.vars and all(RETURN in v for _, v in outcomes):
            return True
        return False

    def _unify(self, node, name, vals, where):
        """The IR type a rebound name takes: the tiles' common type, or the type of the constants."""
        tiles = [v for v in vals if isinstance(v, TileV)]
        for v in vals:
            if not isinstance(v, TileV) and not is_py_scalar(v):
                self.fail(node, TileTypeError, f"'{name}' takes different compile-time values in {where} "
                          f"({', '.join(map(repr, vals))}); only numbers and tiles can differ")
        if not tiles:
            dt = D.scalar_dtype(vals[0])
            for v in vals[1:]:
                dt = D.promote(dt, D.scalar_dtype(v))
            return _scalar_type(dt)
        t = tiles[0].type
        for v in tiles[1:]:
            if v.type != t:
                self.fail(node, TileTypeError, f"'{name}' has type {t} on one path and {v.type} on another in "
                          f"{where}; give it one shape and dtype (e.g. start from tw.zeros(shape, dtype))")
        return t

    def _materialize(self, node, name, value, t):
        if isinstance(value, TileV):
            return value
        try:
            return S.const(self.b, value, t.dtype, t.shape)
        except TileError as e:
            self.fail(node, TileTypeError, f"'{name}': {e.message}")

    def _range_args(self, node):
        it = node.iter
        if not (isinstance(it, ast.Call) and self._is_range(it.func)):
            self.fail(it, TileSyntaxError, "kernels loop with 'for i in range(...)' only; to visit the items "
                      "of a tuple, loop over range(len(items)) and index it")
        if it.keywords:
            self.fail(it, TileSyntaxError, "range() takes positional arguments")
        args = [self.expr(a) for a in it.args]
        if not 1 <= len(args) <= 3:
            self.fail(it, TileTypeError, "range() takes 1 to 3 arguments")
        if len(args) == 1:
            args = [0, args[0], 1]
        elif len(args) == 2:
            args.append(1)
        return args

    def _is_range(self, func):
        try:
            return self.expr(func) is py.range
        except TileError:
            return False

    def stmt_For(self, node):
        if node.orelse:
            self.fail(node, TileSyntaxError, "for ... else is not supported")
        if self._is_static_iter(node.iter):
            return self._static_for(node)
        if not isinstance(node.target, ast.Name):
            self.fail(node.target, TileSyntaxError, "the loop variable must be a single name")
        args = self._range_args(node)
        if all(is_const(a) for a in args):
            for a in args:
                if not isinstance(a, int):
                    self.fail(node.iter, TileTypeError, f"range() needs integers, got {describe(a)}; convert "
                              "with int(...) or compute a trip count with tw.cdiv")
            if args[2] == 0:
                self.fail(node.iter, TileValueError, "range() step must not be zero")
            trips = len(range(*args))
            before = dict(self.vars)
            try:
                return self._dynamic_for(node, args)
            except NeedsUnroll:
                if trips > MAX_UNROLL:
                    raise
                self.vars = before
            return self._unrolled(node, range(*args))
        return self._dynamic_for(node, args)

    def _is_static_iter(self, it):
        if not isinstance(it, ast.Call):
            return False
        try:
            return self.expr(it.func) is B.PUBLIC["static_iter"]
        except TileError:
            return False

    def _static_for(self, node):
        """`for x in tw.static_iter(seq)` (cuTile): the body is unrolled once per item at compile time."""
        items = self.expr(node.iter)
        if len(items) > MAX_UNROLL:
            self.fail(node.iter, TileValueError, f"static_iter over {len(items)} items; at most {MAX_UNROLL} "
                      "are unrolled, use range() for a runtime loop")
        return self._unrolled(node, items)

    def _unrolled(self, node, items):
        """The loop body lowered once per compile-time item, the target bound to that item."""
        for item in items:
            self.assign(node.target, item)
            self.loop_depth += 1
            try:
                self.run_body(node.body)
            finally:
                self.loop_depth -= 1
        return False

    def _dynamic_for(self, node, args):
        bounds = [S.scalar_index(self.b, a, "range() argument") for a in args]
        dt = D.int64 if any(x.dtype.bits == 64 for x in bounds) else D.int32
        bounds = [S.cast(self.b, x, dt) for x in bounds]
        iv_name = node.target.id

        def region_args(carried_types):
            return [_scalar_type(dt)] + carried_types

        def bind(block, names):
            self.vars[iv_name] = TileV(block.args[0])
            for n, a in zip(names, block.args[1:]):
                self.vars[n] = TileV(a)

        return self._loop(node, "for", [x.v for x in bounds], [node.body], region_args, bind, exclude={iv_name})

    def stmt_While(self, node):
        if node.orelse:
            self.fail(node, TileSyntaxError, "while ... else is not supported")
        # Probe the condition in a scratch block that is thrown away: a condition with side effects
        # (`while tw.atomic_cas(...) == 1`, a spin lock) must only run inside the loop.
        with self.b.at(Block()):
            test = self.expr(node.test)
        if is_const(test) and not test:
            return False
        if is_const(test):
            self.fail(node.test, TileSyntaxError, "a while loop needs a runtime condition (break is not "
                      "supported, so 'while True' would never end); write the exit condition in the header, "
                      "e.g. 'while i < n:'")

        def bind(block, names):
            for n, a in zip(names, block.args):
                self.vars[n] = TileV(a)

        return self._loop(node, "while", [], [None, node.body], lambda ts: ts, bind, exclude=set())

    def _loop(self, node, kind, head_operands, bodies, region_args, bind, exclude):
        """Lower a for/while whose carried values are the names its body rebinds. The body is traced
        again if a name that held a Python number turns out to need a tile type."""
        before = dict(self.vars)
        assigned = _assigned_names(node.body) - exclude
        names = [n for n in assigned if n in before and (isinstance(before[n], TileV) or is_py_scalar(before[n]))]
        types_ = {n: before[n].type if isinstance(before[n], TileV) else _scalar_type(D.scalar_dtype(before[n]))
                  for n in names}
        for _ in range(len(names) + 2):
            carried = [types_[n] for n in names]
            regions = []
            self.vars = dict(before)
            retry = False
            for body in bodies:
                block = Block(region_args(carried))
                bind(block, names)
                with self.b.at(block):
                    if body is None:  # the while condition
                        c = self.expr(node.test)
                        c = S.to_bool(self.b, S.as_tile(self.b, c))
                        if c.shape != ():
                            self.fail(node.test, TileTypeError, f"while needs a scalar condition, got {describe(c)}")
                        self.b.emit("yield", [c.v])
                    else:
                        self.loop_depth += 1
                        try:
                            self.run_body(body)
                        finally:
                            self.loop_depth -= 1
                        outs = []
                        for n in names:
                            v = self.vars.get(n)
                            if isinstance(v, TileV) and v.type != types_[n]:
                                if not isinstance(before[n], TileV):
                                    types_[n], retry = v.type, True
                                    continue
                                self.fail(_last_assignment(node.body, n, node), TileTypeError,
                                          f"'{n}' changes type inside the loop, from {types_[n]} "
                                          f"to {v.type}; loop-carried values keep one shape and dtype "
                                          + (f"(convert it back with .astype(tw.{types_[n].dtype.name}) before "
                                             "the end of the body, or initialise it with the dtype the loop "
                                             "gives it)" if v.type.shape == types_[n].shape else
                                             "(initialise it with tw.zeros/tw.full of the final shape and dtype)"))
                            if v is None or (not isinstance(v, TileV) and not is_py_scalar(v)):
                                self.fail(_last_assignment(node.body, n, node), TileTypeError,
                                          f"'{n}' must stay a number or tile inside the loop, got "
                                          f"{describe(v)}; give it a tile or number on every path")
                            outs.append(self._materialize(node, n, v, types_[n]).v)
                        self.b.emit("yield", outs)
                        after_body = self.vars
                        for n in assigned - set(names) - exclude:
                            if n in before and not _same_const(before[n], after_body.get(n)):
                                self.fail(_last_assignment(node.body, n, node), TileTypeError,
                                          f"'{n}' is rebound to {describe(after_body.get(n))} "
                                          "inside a runtime loop; only numbers and tiles can change per iteration")
                regions.append(block)
            if not retry:
                break
        self.vars = before
        inits = [self._materialize(node, n, before[n], types_[n]).v for n in names]
        op = self.b.region_op(kind, head_operands + inits, carried, regions)
        for n in assigned - set(names):
            if n not in before:
                self.vars.pop(n, None)  # first bound inside the loop: not visible after it
                self.scoped_out[n] = (f"'{n}' is first assigned inside the runtime loop at line "
                                      f"{self.src.loc(node)[1]}, so it is not defined after it; assign it "
                                      "before the loop (e.g. with tw.zeros of its shape and dtype)")
        for n, r in zip(names, op.results):
            self.vars[n] = TileV(r)
        return False
