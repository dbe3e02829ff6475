"""Python source -> typed Tile IR: the kernel decorator, the AST lowering and the language's functions."""
from .kernel import Kernel, kernel

__all__ = ["Kernel", "kernel"]
