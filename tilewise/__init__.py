"""tilewise: Python-native tile programming for NVIDIA GPUs and CPUs.

    import tilewise as tw   # or, for cuTile programs: import tilewise as ct
"""
from .errors import (TileAssertionError, TileCompilerExecutionError, TileCompilerTimeoutError, TileError,
                     TileInternalError, TileLaunchError, TileNameError, TileRecursionError, TileStaticAssertionError,
                     TileStaticEvalError, TileSyntaxError, TileTypeError, TileUnsupportedError,
                     TileUnsupportedFeatureError, TileValueError)
from .frontend.builtins import PUBLIC as _PUBLIC
from .frontend.kernel import Kernel, kernel
from .ir.dtypes import (DType, bfloat16, bool_, float4_e2m1fn, float8_e4m3fn, float8_e5m2, float8_e5m3fnu,
                        float8_e8m0fnu, float16, float32, float64, int8, int16, int32, int64, tfloat32, uint8, uint16,
                        uint32, uint64)
from .language import (Array, ArrayAnnotation, ByTarget, ConstantAnnotation, ConstBool, ConstFloat, ConstInt, Constant,
                       IndexedWithInt64, ListAnnotation, MemoryOrder, MemoryScope, PaddingMode, RoundingMode, Scalar,
                       ScalarInt64, Slice, Tile, TiledView, cdiv, compiler_timeout, function)
from .runtime import (CompiledKernel, Device, DeviceArray, Event, LaunchConfig, ObjectCode, Program, ProgramOptions,
                      Stream, compile, devices, empty, launch, to_device, to_host)

from .support import __version__

globals().update({k: v for k, v in _PUBLIC.items() if k != "cdiv"})
# cuTile spells some functions with a trailing underscore, or both ways.
atomic_and_ = _PUBLIC["atomic_and"]
atomic_or_ = _PUBLIC["atomic_or"]
atomic_xor_ = _PUBLIC["atomic_xor"]
abs = _PUBLIC["abs"]  # noqa: A001
pow = _PUBLIC["pow"]  # noqa: A001
divmod = _PUBLIC["divmod"]  # noqa: A001
print = _PUBLIC["print"]  # noqa: A001



__all__ = sorted(set(_PUBLIC) | {
    "TileError", "TileSyntaxError", "TileTypeError", "TileValueError", "TileNameError", "TileLaunchError",
    "TileAssertionError", "TileUnsupportedError", "Kernel", "kernel", "launch", "compile", "CompiledKernel",
    "Program", "ProgramOptions", "ObjectCode", "LaunchConfig",
    "Constant", "ConstInt", "ConstFloat", "ConstBool", "Array", "Tile", "PaddingMode", "RoundingMode",
    "MemoryOrder", "MemoryScope", "ByTarget", "DType", "bool_", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "float16", "bfloat16", "float32", "float64", "tfloat32", "float8_e4m3fn",
    "float8_e5m2", "float4_e2m1fn", "float8_e5m3fnu", "float8_e8m0fnu", "TileCompilerExecutionError",
    "TileCompilerTimeoutError", "TileInternalError", "TileRecursionError", "TileStaticAssertionError",
    "TileStaticEvalError", "TileUnsupportedFeatureError", "ArrayAnnotation", "ConstantAnnotation",
    "ListAnnotation", "IndexedWithInt64", "Scalar", "ScalarInt64", "Slice", "TiledView", "compiler_timeout",
    "function", "Device", "Stream", "Event", "devices", "DeviceArray", "empty", "to_device", "to_host"})
