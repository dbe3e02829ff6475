"""Launching and compiling kernels on the available backends."""
from .launch import CompiledKernel, compile, launch

__all__ = ["CompiledKernel", "compile", "launch"]
