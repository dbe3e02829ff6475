"""Where a Python function's source lives: its AST, file, line/column offsets, globals and closure."""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from dataclasses import dataclass

from ..errors import TileSyntaxError


@dataclass
class FunctionSource:
    fn: object
    tree: ast.FunctionDef
    file: str
    line_offset: int
    col_offset: int
    globals: dict
    closure: dict

    def loc(self, node):
        return (self.file, node.lineno + self.line_offset, node.col_offset + self.col_offset)


@functools.cache
def _parse(code, fn):
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise TileSyntaxError(f"cannot read the source of {fn.__qualname__}; kernels and the helpers they "
                              "call must be defined in a file") from None
    raw = "".join(lines)
    src = textwrap.dedent(raw)
    indent = len(lines[0]) - len(lines[0].lstrip()) if src != raw else 0
    tree = ast.parse(src)
    fdef = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if fdef is None or isinstance(fdef, ast.AsyncFunctionDef):
        raise TileSyntaxError(f"{fn.__qualname__} is not a plain function definition")
    file = inspect.getsourcefile(fn) or code.co_filename
    return fdef, file, first - 1, indent


def function_source(fn) -> FunctionSource:
    fdef, file, line_offset, col_offset = _parse(fn.__code__, fn)
    closure = {}
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                closure[name] = cell.cell_contents
            except ValueError:  # an empty cell: a name assigned later in the enclosing scope
                pass
    return FunctionSource(fn, fdef, file, line_offset, col_offset, fn.__globals__, closure)
