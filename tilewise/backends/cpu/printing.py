"""printf from compiled code: the kernel calls back into Python with pointers to the operands' buffers,
and the reference backend's formatter prints them (so both backends print the same text).

Kernels that print run their blocks one at a time, in grid order, so their output is deterministic."""
from __future__ import annotations

import ctypes
import itertools
import math
import sys
import threading
import traceback

import llvmlite.binding as llvm
import numpy as np

from ..reference.interpreter import _format
from . import objload

SYMBOL = "tilewise_cpu_printf"
_SIGNATURE = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32,
                              ctypes.c_void_p)
_TABLES = {}   # handle -> the printf ops of one compiled kernel
_HANDLES = itertools.count(1)
_LOCK = threading.Lock()


def _print(handle, index, b0, b1, b2, values):
    try:
        op = _TABLES[handle][index]
        ptrs = (ctypes.c_void_p * max(len(op.operands), 1)).from_address(values)
        arrays = []
        for k, v in enumerate(op.operands):
            t = v.type
            nbytes = math.prod(t.shape) * t.dtype.itemsize
            arrays.append(np.frombuffer(ctypes.string_at(ptrs[k], nbytes), t.dtype.np).reshape(t.shape))
        sys.stdout.write(_format(op.attrs["fmt"], arrays, op.attrs.get("python")))
    except Exception:  # an exception cannot cross back into compiled code
        traceback.print_exc()


_CALLBACK = _SIGNATURE(_print)


def register(ops):
    """Make the callback resolvable by the loaders and remember a kernel's printf ops; returns its handle."""
    with _LOCK:
        if "installed" not in _TABLES:
            address = ctypes.cast(_CALLBACK, ctypes.c_void_p).value
            llvm.add_symbol(SYMBOL, address)   # for MCJIT
            objload.SYMBOLS[SYMBOL] = address  # for the own loader
            _TABLES["installed"] = True
        handle = next(_HANDLES)
        _TABLES[handle] = ops
    return handle
