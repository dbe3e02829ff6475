"""Python AST -> Tile IR. One `Lowering` walks one function body (the kernel, or an inlined helper),
evaluating compile-time Python eagerly and emitting IR for everything that depends on runtime values.
Control flow on runtime scalars becomes structured `for`/`while`/`if` ops whose carried values are
the Python names that the loop or branch rebinds."""
from __future__ import annotations

import ast
import builtins as py
import enum
import inspect
import math
import re
import types

import numpy as np

from .. import language as L
from ..errors import (
    TileError,
    TileInternalError,
    TileNameError,
    TileRecursionError,
    TileSyntaxError,
    TileTypeError,
    TileUnsupportedError,
    TileValueError,
)
from ..ir import dtypes as D
from ..ir.ops import IRTypeError
from . import builtins as B
from . import sema as S
from .control_flow import RETURN, ControlFlow, NeedsUnroll, _ends_with_return
from .source import function_source
from .static_eval import static_eval
from .values import ArrayListV, ArrayV, Method, TileV, describe, is_const

BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "truediv", ast.FloorDiv: "floordiv",
          ast.Mod: "mod", ast.Pow: "pow", ast.BitAnd: "and", ast.BitOr: "or", ast.BitXor: "xor",
          ast.LShift: "shl", ast.RShift: "shr", ast.MatMult: "matmul"}
CMPOPS = {ast.Eq: "eq", ast.NotEq: "ne", ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt", ast.GtE: "ge"}

# Python callables that may run at compile time on constant arguments.
# Builtins are listed one by one: eval, exec, open, input, __import__... must never run at compile time.
PURE_MODULES = {"math", "operator", "numpy"}
IMPURE_PREFIXES = ("numpy.random",)
IMPURE_NUMPY = {"load", "save", "savez", "savez_compressed", "loadtxt", "savetxt", "genfromtxt", "fromfile",
                "memmap", "fromregex", "set_printoptions", "seterr"}
PURE_BUILTINS = {py.int, py.float, py.bool, py.len, py.tuple, py.list, py.range, py.zip, py.enumerate,
                 py.isinstance, py.divmod, py.round, py.str, py.reversed, py.sorted, py.any, py.all,
                 py.pow, py.hasattr, py.getattr, py.type, py.min, py.max, py.abs, py.sum, py.slice, py.map,
                 py.filter, py.issubclass, py.callable, py.repr, py.format, py.ord, py.chr, py.hash, py.frozenset}


_ARG_HINT = "pass the value as a kernel argument (tw.Constant[...] for compile-time values)"
# Statements the tile language rejects: (keyword shown to the user, what to write instead).
UNSUPPORTED_STMTS = {
    "Break": ("break", "use a while loop whose condition becomes false"),
    "Continue": ("continue", "guard the rest of the body with if"),
    "FunctionDef": ("def", "define helper functions at module level and call them"),
    "AsyncFunctionDef": ("async def", "define helper functions at module level and call them"),
    "ClassDef": ("class", "define classes at module level"),
    "With": ("with", "context managers do not run inside a kernel; move the with around the tw.launch call"),
    "AsyncWith": ("async with", "move it around the tw.launch call"),
    "AsyncFor": ("async for", "loop with 'for i in range(...)'"),
    "Try": ("try", "exceptions cannot be caught in a kernel; remove the try and check conditions with "
            "if or tw.assert_"),
    "TryStar": ("try", "exceptions cannot be caught in a kernel; remove the try"),
    "Raise": ("raise", "fail the launch with tw.assert_(condition, message)"),
    "Delete": ("del", "rebind the name instead; tiles are freed automatically"),
    "Global": ("global", _ARG_HINT),
    "Nonlocal": ("nonlocal", _ARG_HINT),
    "Import": ("import", "import at module level"),
    "ImportFrom": ("from ... import", "import at module level"),
    "Match": ("match", "use if/elif on the value"),
}
# Expressions the tile language rejects, likewise.
UNSUPPORTED_EXPRS = {
    "Lambda": ("lambda expressions", "define a helper function at module level and call it"),
    "ListComp": ("list comprehensions", "write the values out as a tuple, or compute on a whole tile "
                 "(tw.arange, broadcasting)"),
    "SetComp": ("set comprehensions", "write the values out as a tuple"),
    "DictComp": ("dict comprehensions", "use tuples or pass values as tw.Constant arguments"),
    "GeneratorExp": ("generator expressions", "write the values out as a tuple, or use a tile reduction "
                     "(tw.sum, tw.max...)"),
    "Dict": ("dict displays", "use tuples, or pass values as tw.Constant arguments"),
    "Set": ("set displays", "use a tuple"),
    "NamedExpr": ("assignment expressions (:=)", "assign in a separate statement"),
    "Yield": ("yield", "kernels cannot be generators; store results with tw.store"),
    "YieldFrom": ("yield from", "kernels cannot be generators; store results with tw.store"),
    "Await": ("await", "kernels cannot be async"),
}


# What printf can say of one runtime value, in the words of Python's format spec (sign, alternate form,
# zero padding, width, precision, type); the backends' printf reads the same grammar.
_PRINTF_SPEC = re.compile(r"[-+ ]?#?0?\d*(?:\.\d+)?[doxXeEfFgGc]?")

OP_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
              ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<",
              ast.RShift: ">>", ast.MatMult: "@"}


class Lowering(ControlFlow):
    def __init__(self, source, builder, vars_, in_helper=False):
        self.src, self.b, self.vars, self.in_helper = source, builder, vars_, in_helper
        self.loop_depth = 0
        self.scoped_out = {}  # name -> why it is not visible here (bound only inside an if or a loop)

    # ---- errors ---------------------------------------------------------------------------------

    def fail(self, node, cls, msg):
        raise cls(msg, self.src.loc(node))

    def _locate(self, node, fn, *args):
        """Run fn, attaching this node's location to any location-less error it raises."""
        saved = self.b.loc
        self.b.loc = self.src.loc(node)
        try:
            return fn(*args)
        except TileError as e:
            if e.loc is None:
                raise type(e)(e.message, self.src.loc(node)) from None
            raise
        except IRTypeError as e:
            raise TileTypeError(str(e), self.src.loc(node)) from None
        except (RecursionError, MemoryError):
            raise
        except Exception as e:  # a compiler bug: still name the user's line; keep the cause for the report
            raise TileInternalError(f"internal compiler error ({type(e).__name__}: {e}) while compiling this "
                                    "line; please report it", self.src.loc(node)) from e
        finally:
            self.b.loc = saved

    # ---- statements -----------------------------------------------------------------------------

    def run_body(self, stmts) -> bool:
        """Lower statements in order; True once a `return` has been lowered (the rest is dead)."""
        stmts = list(stmts)
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, ast.If) and _ends_with_return(stmt.body) and not self._const_test(stmt.test):
                # `if c: ...; return` followed by more code: the rest becomes the else branch.
                rest = stmts[i + 1:]
                orelse = stmt.orelse if _ends_with_return(stmt.orelse) else stmt.orelse + rest
                if_node = ast.If(test=stmt.test, body=stmt.body, orelse=orelse)
                ast.copy_location(if_node, stmt)
                self._locate(stmt, self.stmt_If, if_node)
                return _ends_with_return(orelse)
            if self._locate(stmt, self.stmt, stmt):
                return True
        return False

    def stmt(self, node) -> bool:
        handler = getattr(self, "stmt_" + type(node).__name__, None)
        if handler is None:
            kind = type(node).__name__
            keyword, hint = UNSUPPORTED_STMTS.get(kind, (kind.lower(), ""))
            self.fail(node, TileSyntaxError, f"'{keyword}' statements are not supported in a kernel"
                      + (f"; {hint}" if hint else ""))
        return bool(handler(node))

    def stmt_Expr(self, node):
        self.expr(node.value)

    def stmt_Pass(self, node):
        pass

    def stmt_Assign(self, node):
        value = self.expr(node.value)
        for target in node.targets:
            self.assign(target, value)

    def stmt_AnnAssign(self, node):
        if node.value is not None:
            self.assign(node.target, self.expr(node.value))

    def stmt_AugAssign(self, node):
        if not isinstance(node.target, ast.Name):
            self.fail(node.target, TileSyntaxError, "tiles are immutable: only names can be updated with "
                      f"'{OP_SYMBOLS.get(type(node.op), 'op')}='; build a new tile (tw.where) or write to an "
                      "array with tw.store / tw.scatter")
        current = self.name(node.target)
        self.vars[node.target.id] = self.binop(type(node.op), current, self.expr(node.value))

    def assign(self, target, value):
        if isinstance(target, ast.Name):
            self.vars[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            if isinstance(value, TileV):
                self.fail(target, TileTypeError, f"cannot unpack {describe(value)}: tiles are not iterable; work "
                          "on the whole tile, or take one element with tw.extract(t, (i,), (1,)).item()")
            if not isinstance(value, (tuple, list)):
                self.fail(target, TileTypeError, f"cannot unpack {describe(value)}; only tuples can be unpacked")
            if len(value) != len(target.elts):
                self.fail(target, TileValueError, f"cannot unpack {len(value)} values into {len(target.elts)} "
                          "names; use one name per value")
            for t, v in zip(target.elts, value):
                self.assign(t, v)
        elif isinstance(target, ast.Subscript):
            self.fail(target, TileSyntaxError, "tiles and arrays cannot be assigned element-wise; build a new "
                      "tile (tw.where) or write to an array with tw.store / tw.scatter")
        else:
            self.fail(target, TileSyntaxError, f"cannot assign to {type(target).__name__.lower()} "
                      f"'{ast.unparse(target)}' in a kernel; bind the result to a new name")

    def stmt_Return(self, node):
        if self.loop_depth:
            self.fail(node, TileSyntaxError, "return inside a loop is not supported; let the loop finish (use "
                      "a while loop whose condition becomes false) and guard the rest with if")
        value = None if node.value is None else self.expr(node.value)
        if not self.in_helper and value is not None:
            self.fail(node, TileSyntaxError, "a kernel cannot return a value; store results with tw.store")
        self.vars[RETURN] = value
        return True

    def stmt_Assert(self, node):
        msg = self.expr(node.msg) if node.msg is not None else ast.unparse(node.test)
        cond = self.expr(node.test)
        if is_const(cond) and not cond:
            self.fail(node, TileValueError, f"assertion failed at compile time: {msg}")
        B.assert_(self.b, cond, msg)

    # ---- expressions ----------------------------------------------------------------------------

    def expr(self, node):
        handler = getattr(self, "expr_" + type(node).__name__, None)
        if handler is None:
            kind = type(node).__name__
            what, hint = UNSUPPORTED_EXPRS.get(kind, (f"{kind} expressions", ""))
            self.fail(node, TileSyntaxError, f"{what} are not supported in a kernel" + (f"; {hint}" if hint else ""))
        return self._locate(node, handler, node)

    def expr_Constant(self, node):
        return node.value

    def name(self, node):
        n = node.id
        for scope in (self.vars, self.src.closure, self.src.globals):
            if n in scope:
                return self._check_global(node, scope[n]) if scope is not self.vars else scope[n]
        if hasattr(py, n):
            return getattr(py, n)
        if n in self.scoped_out:
            self.fail(node, TileNameError, self.scoped_out[n])
        self.fail(node, TileNameError, f"name '{n}' is not defined; assign it before use, or pass it to the "
                  "kernel as an argument")

    expr_Name = name

    def _check_global(self, node, value):
        if isinstance(value, (np.ndarray, list, dict, set)) or \
                (hasattr(value, "__dlpack__") and not isinstance(value, type)):
            hint = "use a tuple for compile-time constants" if isinstance(value, (list, dict, set)) else \
                "kernels cannot capture arrays"
            kind = f"a {type(value).__name__}" if isinstance(value, (list, dict, set)) else "an array"
            self.fail(node, TileTypeError, f"'{node.id}' is {kind} from the enclosing scope; "
                      f"{hint}; pass arrays to the kernel as arguments")
        return value

    def expr_Attribute(self, node):
        obj = self.expr(node.value)
        attr = node.attr
        if isinstance(obj, TileV):
            if attr in ("shape", "dtype", "ndim"):
                return getattr(obj, attr)
            if attr == "T":
                return B.transpose(self.b, obj)
            if attr in B.TILE_METHODS:
                return Method(B.TILE_METHODS[attr], obj)
            alt = f"call tw.{attr}(t) instead" if attr in B.PUBLIC else \
                f"tiles have .shape, .dtype, .ndim, .T and the methods {', '.join(sorted(B.TILE_METHODS))}"
            self.fail(node, TileTypeError, f"tiles have no attribute '{attr}'; {alt}")
        if isinstance(obj, ArrayV):
            if attr == "shape":
                return S.array_shape(self.b, obj)
            if attr in ("dtype", "ndim"):
                return getattr(obj, attr)
            self.fail(node, TileTypeError, f"arrays have .shape, .dtype and .ndim; '{attr}' is not supported")
        if isinstance(obj, ArrayListV):
            self.fail(node, TileTypeError, f"a list of arrays has no attribute '{attr}'")
        try:
            return getattr(obj, attr)
        except AttributeError:
            self.fail(node, TileNameError, f"{describe(obj)} has no attribute '{attr}'")

    def expr_Tuple(self, node):
        out = []
        for e in node.elts:
            if isinstance(e, ast.Starred):
                out.extend(self._starred(e))
            else:
                out.append(self.expr(e))
        return tuple(out)

    expr_List = expr_Tuple

    def _starred(self, node):
        v = self.expr(node.value)
        if not isinstance(v, (tuple, list)):
            self.fail(node, TileTypeError, f"cannot unpack {describe(v)} with *")
        return list(v)

    def expr_Slice(self, node):
        parts = [None if p is None else self.expr(p) for p in (node.lower, node.upper, node.step)]
        return slice(*parts)

    def expr_Subscript(self, node):
        obj = self.expr(node.value)
        idx = self.expr(node.slice)
        if isinstance(obj, ArrayListV):
            if isinstance(idx, TileV):
                raise NeedsUnroll(f"'{obj.name}[...]' needs a compile-time index; loop with constant range() "
                                  "bounds so the loop can be unrolled", self.src.loc(node))
            try:
                return obj.items[idx]
            except (IndexError, TypeError):
                self.fail(node, TileValueError,
                          f"index {idx!r} is out of range for '{obj.name}' of length {len(obj.items)}")
        if isinstance(obj, TileV):
            return self._tile_index(node, obj, idx)
        if isinstance(obj, ArrayV):
            self.fail(node, TileSyntaxError, f"arrays are read with tw.load or tw.gather, not '{obj.name}[...]'")
        if isinstance(idx, TileV) and isinstance(obj, (tuple, list)):
            # a constant-range loop over a tuple of tiles: unroll it, as for a list of arrays
            raise NeedsUnroll(f"indexing a {type(obj).__name__} needs a compile-time index; loop with constant "
                              "range() bounds so the loop can be unrolled", self.src.loc(node))
        if isinstance(idx, TileV):
            self.fail(node.slice, TileTypeError, f"cannot index {describe(obj)} with a runtime value")
        try:
            return obj[idx]
        except Exception as e:
            self.fail(node, TileValueError, f"cannot index {describe(obj)}: {e}")

    def _tile_index(self, node, x, idx):
        """x[None, :], x[:, None], x[..., None]: only new axes and full slices."""
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is Ellipsis for i in idx):
            k = idx.index(Ellipsis)
            fill = x.ndim - sum(1 for i in idx if i is not None and i is not Ellipsis)
            idx = idx[:k] + (slice(None),) * fill + idx[k + 1:]
        shape, axis = [], 0
        for i in idx:
            if i is None:
                shape.append(1)
            elif isinstance(i, slice) and i == slice(None):
                if axis >= x.ndim:
                    self.fail(node, TileValueError, f"too many indices for a tile of shape {x.shape}; use one ':' "
                              "per tile dimension, and None for each new axis")
                shape.append(x.shape[axis])
                axis += 1
            else:
                self.fail(node, TileSyntaxError, "tiles support only x[None, :]-style indexing; use tw.extract "
                          "for sub-tiles and .item() for a single element")
        shape.extend(x.shape[axis:])
        return S.reshape(self.b, x, tuple(shape))

    def expr_BinOp(self, node):
        return self.binop(type(node.op), self.expr(node.left), self.expr(node.right))

    def binop(self, op, x, y):
        fn = BINOPS[op]
        if fn == "matmul":
            return B.matmul(self.b, x, y)
        if isinstance(x, (tuple, str)) and is_const(y):
            return S.PY_BINARY[fn](x, y)
        return S.binary(self.b, fn, x, y)

    def expr_UnaryOp(self, node):
        x = self.expr(node.operand)
        if isinstance(node.op, ast.Not):
            return S.logical_not(self.b, x)
        if isinstance(node.op, ast.UAdd):
            return x
        return S.unary(self.b, "neg" if isinstance(node.op, ast.USub) else "invert", x)

    def expr_BoolOp(self, node):
        fn = "and" if isinstance(node.op, ast.And) else "or"
        result = self.expr(node.values[0])
        for v in node.values[1:]:
            if is_const(result):  # Python short-circuit on compile-time values
                if (fn == "and" and not result) or (fn == "or" and result):
                    return result
                result = self.expr(v)
                continue
            rhs = self.expr(v)
            if is_const(rhs):
                if (fn == "and" and not rhs) or (fn == "or" and rhs):
                    return rhs
                continue
            result = S.logical(self.b, fn, result, rhs)
        return result

    def expr_Compare(self, node):
        left = self.expr(node.left)
        result = True
        for op, right_node in zip(node.ops, node.comparators):
            right = self.expr(right_node)
            if isinstance(op, (ast.Is, ast.IsNot, ast.In, ast.NotIn)):
                if not (is_const(left) and is_const(right)):
                    self.fail(node, TileTypeError, "'is' and 'in' work on compile-time values only")
                r = {ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
                     ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}[type(op)](left, right)
            else:
                r = S.binary(self.b, CMPOPS[type(op)], left, right)
            result = r if result is True else S.logical(self.b, "and", result, r) \
                if not (is_const(result) and is_const(r)) else (result and r)
            left = right
        return result

    def expr_IfExp(self, node):
        cond = self.expr(node.test)
        if is_const(cond):
            return self.expr(node.body if cond else node.orelse)
        return S.where(self.b, cond, self.expr(node.body), self.expr(node.orelse))

    def expr_JoinedStr(self, node):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            else:
                x = self.expr(v.value)
                if not is_const(x):
                    self.fail(v, TileSyntaxError, "f-strings with runtime values are only supported in print(); "
                              "write print(f'...') directly, or tw.printf('%f', value)")
                spec = self.expr(v.format_spec) if v.format_spec else ""
                parts.append(self._format_const(v, x, spec))
        return "".join(parts)

    def _format_const(self, node, x, spec):
        """format(x, spec) of a compile-time value, with Python's complaint about the spec at its line."""
        try:
            return format(x, spec)
        except (ValueError, TypeError) as e:
            self.fail(node, TileValueError, f"invalid format spec {spec!r} for {type(x).__name__} {x!r}: {e}")

    def _printf_conversion(self, node, x, spec):
        """The printf conversion for `{x:spec}` of a runtime value. The spec must be one Python's format()
        accepts for a value of x's dtype, and one that printf can say: a bad spec would otherwise be
        printed literally on some backends and take the next value's place on others."""
        dt = x.v.type.dtype
        sample = True if dt.is_bool else 1 if dt.is_int else 1.5
        try:
            format(sample, spec)
        except (ValueError, TypeError) as e:
            self.fail(node, TileValueError, f"invalid format spec {spec!r} for a {dt.name} value: {e}")
        if not _PRINTF_SPEC.fullmatch(spec):
            self.fail(node, TileUnsupportedError,
                      f"format spec {spec!r} is not supported in a kernel's print(); a runtime value takes "
                      "[sign][#][0][width][.precision][type] with type one of d o x X e E f F g G c, e.g. "
                      "{x:8.3f} or {n:5d}")
        # `{x:.2f}` already names its conversion (printf's "%.2f"); `{x}` and `{x:5}` print as %v
        return "%" + spec + ("" if spec[-1:] in "diouxXeEfFgGcs" and spec else "v")

    def expr_Call(self, node):
        func = self.expr(node.func)
        if func is py.print or func is B.PUBLIC["print"]:
            return self._print(node)
        if func in (B.PUBLIC["static_eval"], B.PUBLIC["static_assert"]) and node.args and not node.keywords:
            # cuTile evaluates these arguments as plain Python (any syntax), not as tile code
            args = [static_eval(self, a) for a in node.args]
            return self.call(node, func, args, {})
        args = []
        for a in node.args:
            if isinstance(a, ast.Starred):
                args.extend(self._starred(a))
            else:
                args.append(self.expr(a))
        kwargs = {}
        for k in node.keywords:
            if k.arg is None:
                v = self.expr(k.value)
                if not isinstance(v, dict):
                    self.fail(k, TileTypeError, "** needs a dict")
                kwargs.update(v)
            else:
                kwargs[k.arg] = self.expr(k.value)
        return self.call(node, func, args, kwargs)

    def call(self, node, func, args, kwargs):
        if isinstance(func, Method):
            return self._call_rule(node, func.fn, [func.obj] + args, kwargs, getattr(func.fn, "__name__", "method"))
        impl = B.BUILTINS.get(func) if _hashable(func) else None
        if impl is not None:
            return self._call_rule(node, impl, args, kwargs, func.__name__)
        if func in (py.min, py.max) and any(not is_const(a) for a in args):
            fn = "minimum" if func is py.min else "maximum"
            if kwargs or len(args) < 2:
                self.fail(node, TileTypeError, f"{func.__name__}() on tiles takes two or more positional arguments")
            out = args[0]
            for a in args[1:]:
                out = S.binary(self.b, fn, out, a)
            return out
        if func is py.divmod and len(args) == 2 and not kwargs and not all(is_const(a) for a in args):
            return B.divmod_(self.b, *args)
        if func is py.abs and len(args) == 1:
            return S.unary(self.b, "abs", args[0])
        if func in (py.int, py.float, py.bool) and len(args) == 1 and isinstance(args[0], TileV):
            return S.cast(self.b, args[0], {py.int: D.int32, py.float: D.float32, py.bool: D.bool_}[func])
        if func is py.len and len(args) == 1 and isinstance(args[0], ArrayListV):
            return len(args[0].items)
        if func is py.len and len(args) == 1 and isinstance(args[0], TileV):
            if not args[0].shape:
                self.fail(node, TileTypeError, "len() of a scalar")
            return args[0].shape[0]
        if isinstance(func, DType_types()) and len(args) == 1:
            return B.astype(self.b, args[0], func)
        func = getattr(func, "__tile_function__", func)  # a @tw.kernel called from a kernel is inlined too
        if isinstance(func, types.FunctionType) and func.__module__ != "tilewise":
            return self.inline(node, func, args, kwargs)
        if all(is_const(a) for a in list(args) + list(kwargs.values())) and _pure(func):
            try:
                return func(*args, **kwargs)
            except Exception as e:
                self.fail(node, TileValueError, f"{getattr(func, '__name__', func)}(...) failed at compile time: {e}")
        if func is py.range:
            self.fail(node, TileSyntaxError, "range() with runtime bounds is only allowed as a for-loop iterator")
        name = getattr(func, "__name__", None)
        if not callable(func) or name is None:
            self.fail(node, TileTypeError, f"{describe(func)} is not callable")
        if _pure(func):
            alt = f"tw.{name}" if name in B.PUBLIC else "the tw.* functions"
            self.fail(node, TileTypeError, f"{name}() runs only on compile-time values and got a runtime tile or "
                      f"scalar; use {alt} on tiles")
        self.fail(node, TileTypeError, f"{name}() cannot be called in a kernel; a kernel may call tw.* functions, "
                  "Python helper functions (they are inlined), and math/numpy functions on compile-time values")

    def _call_rule(self, node, impl, args, kwargs, name):
        try:
            inspect.signature(impl).bind(self.b, *args, **kwargs)
        except TypeError as e:
            self.fail(node, TileTypeError, f"{name}(): {e}; the signature is {name}{_user_signature(impl)}")
        return impl(self.b, *args, **kwargs)

    def inline(self, node, fn, args, kwargs):
        # Inlining a function already being inlined would never end; cuTile refuses it too. Without this
        # check the walk ended in Python's RecursionError.
        active = getattr(self, "inlining", (self.src.fn,))  # the kernel, then each helper inlined into it
        if fn in active:  # functions compare by identity
            first = active.index(fn)
            between = ", ".join(f"'{f.__name__}'" for f in active[first + 1:])
            via = f" through {between}" if between else ""
            kind = "kernel" if first == 0 else "helper"
            self.fail(node, TileRecursionError, f"{kind} '{fn.__name__}' calls itself{via}; "
                      "recursion is not supported in kernels")
        src = function_source(fn)
        sig = inspect.signature(fn)
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            self.fail(node, TileTypeError, f"{fn.__name__}(): {e}")
        bound.apply_defaults()
        sub = Lowering(src, self.b, dict(bound.arguments), in_helper=True)
        sub.inlining = active + (fn,)
        sub.loop_depth = 0
        sub.run_body(src.tree.body)
        return sub.vars.get(RETURN)

    def _print(self, node):
        """print(...) of strings, f-strings and values -> one printf with %v placeholders."""
        fmt, vals = [], []
        sep, end = " ", "\n"
        for k in node.keywords:
            if k.arg in ("sep", "end"):
                v = self.expr(k.value)
                sep, end = (v, end) if k.arg == "sep" else (sep, v)
        for a in node.args:
            piece = []
            nodes = a.values if isinstance(a, ast.JoinedStr) else [a]
            for v in nodes:
                if isinstance(v, ast.Constant):
                    piece.append(str(v.value).replace("%", "%%"))
                    continue
                spec, node_of_spec = "", v
                if isinstance(v, ast.FormattedValue):
                    spec = self.expr(v.format_spec) if v.format_spec else ""
                    v = v.value
                x = self.expr(v)
                if is_const(x):
                    piece.append(self._format_const(node_of_spec, x, spec).replace("%", "%%"))
                else:
                    x = S.require_tile(x)
                    piece.append(self._printf_conversion(node_of_spec, x, spec))
                    vals.append(x.v)
            fmt.append("".join(piece))
        self.b.emit("printf", vals, fmt=sep.join(fmt) + end, python=True)


def _user_signature(impl):
    """A lowering rule's signature without its leading builder parameter."""
    try:
        sig = inspect.signature(impl)
    except (TypeError, ValueError):
        return "(...)"
    text = str(sig.replace(parameters=list(sig.parameters.values())[1:]))
    return re.sub(r"<(\w+)\.(\w+): [^>]*>", r"tw.\1.\2", text)  # enum defaults as users write them


def _hashable(x):
    try:
        hash(x)
        return True
    except TypeError:
        return False


def _pure(func):
    if func in PURE_BUILTINS if _hashable(func) else False:
        return True
    if isinstance(func, type) and (issubclass(func, (np.generic, enum.Enum))):
        return True
    mod = getattr(func, "__module__", None) or ""
    if mod.startswith(IMPURE_PREFIXES) or (mod.split(".")[0] == "numpy" and
                                           getattr(func, "__name__", "") in IMPURE_NUMPY):
        return False
    return mod.split(".")[0] in PURE_MODULES or func in (math.ceil, math.floor, L.cdiv)


def DType_types():
    return (D.DType,)
