"""The user-facing error classes. Compile-time errors carry a source location and show the line."""
from __future__ import annotations

import linecache


class TileError(Exception):
    """Base of every error a user of tilewise can cause. `internal` marks a compiler bug reported at the
    user's line; such an error keeps its cause so the report shows where the bug is."""

    def __init__(self, message, loc=None, internal=False):
        self.message, self.loc, self.internal = message, loc, internal
        super().__init__(self._render())

    def _render(self):
        if self.loc is None:
            return self.message
        file, line, col = self.loc
        text = linecache.getline(file, line).rstrip("\n")
        head = f"{file}:{line}:{col + 1}: {self.message}"
        if not text:
            return head
        stripped = text.lstrip()
        caret_col = max(col - (len(text) - len(stripped)), 0)
        return f"{head}\n    {stripped}\n    {' ' * caret_col}^"


class TileSyntaxError(TileError, SyntaxError):
    """Python syntax that the tile language does not support."""

    def __str__(self):  # SyntaxError would otherwise print only its msg attribute
        return self.args[0] if self.args else ""


class TileTypeError(TileError, TypeError):
    """An operation on tiles or scalars whose types, shapes or constness do not fit."""


class TileValueError(TileError, ValueError):
    """A value that is of the right type but out of the allowed range (an axis, a shape)."""


class TileNameError(TileError, NameError):
    """A name that is not defined, or not usable, inside a kernel."""


class TileLaunchError(TileError, ValueError):
    """A launch whose grid, arguments or stream are wrong; raised before any work is done."""


class TileAssertionError(TileError, AssertionError):
    """A `tw.assert_` failed while the kernel ran."""


class TileUnsupportedError(TileError, NotImplementedError):
    """A feature that tilewise recognises but does not implement (yet, or on this target)."""


# cuTile's exception names. Each is part of this hierarchy, under the class tilewise already raised in
# that situation, so `except ct.TileStaticAssertionError` and `except tw.TileValueError` both catch it.
TileUnsupportedFeatureError = TileUnsupportedError  # cuTile's name for the same thing


class TileRecursionError(TileUnsupportedError, RecursionError):
    """A kernel or helper that calls itself: inlining would never end."""


class TileStaticAssertionError(TileValueError):
    """`static_assert` found its condition false at compile time."""


class TileStaticEvalError(TileTypeError):
    """The expression of `static_eval` (or `static_assert`) failed or needed a run-time value."""


class TileInternalError(TileError):
    """A compiler bug, reported at the user's line; please report it."""

    def __init__(self, message, loc=None, internal=True):
        super().__init__(message, loc, internal)


class TileCompilerExecutionError(TileInternalError, RuntimeError):
    """A backend's compiler (LLVM, NVRTC, g++) rejected the code tilewise generated."""


class TileCompilerTimeoutError(TileInternalError, TimeoutError):
    """A backend's external compiler ran longer than `compiler_timeout` allows."""
