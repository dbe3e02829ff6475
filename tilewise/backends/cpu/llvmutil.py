"""LLVM types shared by the code generator, and declaration of overloaded intrinsics."""
from __future__ import annotations

from llvmlite import ir

I1, I8, I16, I32, I64 = (ir.IntType(n) for n in (1, 8, 16, 32, 64))
HALF, F32, F64 = ir.HalfType(), ir.FloatType(), ir.DoubleType()
PTR = ir.PointerType()


def intrinsic(module, name, ret, args, suffix=None):
    """Declare (once) an overloaded LLVM intrinsic; the name takes its type suffixes."""
    suffix = suffix if suffix is not None else [ret]
    full = name + "".join("." + t.intrinsic_name for t in suffix)
    fn = module.globals.get(full)
    if fn is None:
        fn = ir.Function(module, ir.FunctionType(ret, list(args)), full)
    return fn
