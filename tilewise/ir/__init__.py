"""Tile IR: typed SSA values, ops with type rules, structured control flow, printer, verifier, passes."""
from . import dtypes
from .builder import Builder
from .core import Block, Function, Op, Value
from .ops import IRTypeError
from .passes import optimize
from .printer import print_function
from .types import ArrayType, TileType, scalar
from .verifier import verify

__all__ = ["dtypes", "Builder", "Block", "Function", "Op", "Value", "IRTypeError", "optimize",
           "print_function", "ArrayType", "TileType", "scalar", "verify"]
