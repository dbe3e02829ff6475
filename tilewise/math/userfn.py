"""A user's epilog function as an EpilogSpec. The compiler inlines `def` functions from their source;
a lambda has no `def` to parse, so it is rewritten once into one, from the lambda's own expression in
its file, with the lambda's globals, closure and defaults (errors still name the user's line)."""
from __future__ import annotations

import ast
import inspect
import linecache
import types

from .epilogs import EpilogSpec, MatmulEpilog

_CONVERTED = {}  # the user's lambda -> its def twin (kept alive with the lambda as key)


def _lambda_node(fn):
    file = inspect.getsourcefile(fn) or fn.__code__.co_filename
    source = "".join(linecache.getlines(file))
    if not source:
        raise TypeError(f"cannot read the source of the epilog lambda in {file}; define it with def in a file")
    line = fn.__code__.co_firstlineno
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount])
    found = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Lambda) and n.lineno == line
             and [a.arg for a in n.args.posonlyargs + n.args.args + n.args.kwonlyargs] == params]
    if len(found) != 1:
        raise TypeError(f"cannot tell which lambda on {file}:{line} is the epilog ({len(found)} candidates); "
                        "define the epilog with def")
    return file, found[0]


def as_def(fn):
    """`fn` itself, or for a lambda a def function with the same meaning whose source the compiler reads."""
    if fn.__name__ != "<lambda>":
        return fn
    twin = _CONVERTED.get(fn)
    if twin is None:
        file, node = _lambda_node(fn)
        fdef = ast.FunctionDef(name="epilog_lambda", args=node.args, body=[ast.Return(node.body)],
                               decorator_list=[], returns=None, lineno=node.lineno, col_offset=0)
        # the def on the line above, so that the expression keeps the user's line number
        text = "\n" * max(node.lineno - 2, 0) + ast.unparse(ast.fix_missing_locations(ast.Module([fdef], [])))
        name = f"<epilog lambda at {file}:{node.lineno}>"
        linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        closure = {}
        for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            try:
                closure[var] = cell.cell_contents
            except ValueError:
                pass
        namespace = {**fn.__globals__, **closure}
        exec(compile(text, name, "exec"), namespace)  # noqa: S102 - the user's own expression, as a def
        twin = namespace["epilog_lambda"]
        twin.__defaults__, twin.__kwdefaults__ = fn.__defaults__, fn.__kwdefaults__
        _CONVERTED[fn] = twin
    return twin


def spec_of(epilog) -> EpilogSpec:
    """The EpilogSpec of a MatmulEpilog member, an int with a member's value, or a Python function."""
    if epilog is None:
        return MatmulEpilog.DEFAULT.spec
    if isinstance(epilog, MatmulEpilog):
        return epilog.spec
    if isinstance(epilog, int) and not isinstance(epilog, bool) and epilog in MatmulEpilog._value2member_map_:
        return MatmulEpilog(epilog).spec
    if not isinstance(epilog, types.FunctionType):
        raise TypeError(f"epilog must be a MatmulEpilog member or a Python function on tiles "
                        f"(f(acc, **epilog_inputs) -> tile), got {type(epilog).__name__}")
    fn = as_def(epilog)
    params = list(inspect.signature(fn).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise TypeError(f"epilog function {epilog.__qualname__} must take the accumulator tile as its first "
                        "positional parameter")
    named = [p for p in params[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return EpilogSpec(epilog.__qualname__, fn,
                      inputs=tuple(p.name for p in named if p.default is p.empty),
                      optional=tuple(p.name for p in named if p.default is not p.empty))
