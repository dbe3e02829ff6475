"""What the static analyzer reports (lints.py, padding.py): one `Finding` per problem, at a source line."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One lint: `code` names the check, `severity` is "error" (the result may be wrong) or "warning"
    (it is slow); `line` and `col` are 1-based, as in tilewise's error messages."""
    code: str
    severity: str
    message: str
    file: str
    line: int
    col: int

    def __str__(self):
        return f"{self.file}:{self.line}:{self.col}: {self.code}: {self.message}"


def finding(code, severity, message, loc):
    """A Finding at `loc` (file, line, 0-based column), as ops carry it."""
    file, line, col = loc or ("<kernel>", 0, -1)
    return Finding(code, severity, message, file, line, col + 1)
