"""The reference backend: Tile IR executed by NumPy, vectorised over blocks. It is the oracle."""
from __future__ import annotations

from .interpreter import Plan, execute


class ReferenceExecutable:
    code = None
    binary = None

    def __init__(self, fn):
        self.fn = fn
        self.plan = Plan(fn)
        self.resources = {}

    def run(self, args, grid):
        execute(self.plan, args, grid)


class ReferenceBackend:
    name = "reference"

    def compile(self, fn, target=None):
        return ReferenceExecutable(fn)
