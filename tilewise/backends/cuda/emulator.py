"""Builds generated CUDA C++ with the host compiler against include/emulator.h and runs it: the
"cuda-emulated" backend, which tests the CUDA code generator on machines without a GPU.

The shared libraries and the precompiled header are entries of the disk cache's "cuda-emulated" namespace
(support/diskcache.py), keyed by the source, the headers, the flags and the compiler's version. What is
dlopened or handed to the compiler is always a copy, in this process's private directory, of bytes whose
digest was checked; a bad entry is compiled again, and a precompiled header that the compiler rejects
is built again once."""
from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

from ...errors import (
    TileAssertionError,
    TileCompilerExecutionError,
    TileCompilerTimeoutError,
    TileError,
    TileLaunchError,
)
from ...ir.dtypes import int64 as INT64
from ...ir.types import ArrayType
from ...language import current_compiler_timeout
from ...support import diskcache
from ..reference.interpreter import _format

INCLUDE = Path(__file__).parent / "include"
FLAGS = ["-O1", "-std=c++20", "-shared", "-fPIC", "-pthread", "-ffp-contract=off", "-fvisibility=hidden", "-w"]
NAMESPACE = "cuda-emulated"
PRELUDE = '#include "emulator.h"\n#include "tilewise.cuh"\n'
_LIBS = {}     # key -> the loaded library
_PRELUDE = {}  # (pid, key) -> (the precompiled header's header, whether this process built it)
_LOCK = threading.Lock()
_LEAKED = []  # arguments of launches that timed out (_emulate)
# emulator.h's tw_emu::print_fn: print number, one pointer per value, the block index.
PRINT_FN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.c_uint, ctypes.c_uint,
                            ctypes.c_uint)


def compiler():
    return os.environ.get("CXX") or "g++"


@functools.cache
def _compiler_version(cxx):
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise TileLaunchError(f"the cuda-emulated backend needs a C++20 host compiler ('{cxx}'; set CXX): "
                              f"{e}") from None
    return out.splitlines()[0] if out else cxx


def _key(*parts):
    cxx = compiler()
    headers = "".join((INCLUDE / h).read_text() for h in ("tilewise.cuh", "emulator.h"))
    return hashlib.sha256("\0".join([*parts, headers, " ".join(FLAGS), _compiler_version(cxx)]).encode()).hexdigest()


def _compile(cmd):
    limit = current_compiler_timeout()  # tw.compiler_timeout(...)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        raise TileCompilerTimeoutError(f"the emulator's C++ compiler ran longer than the {limit:g} s that "
                                       "tw.compiler_timeout allows") from None


def _failed(what, r):  # generated code that does not compile is a code generator bug
    return TileCompilerExecutionError(f"internal error: {what} failed to build for the emulator:\n"
                                      f"{r.stderr[-4000:]}")


def _rejects_header(r):
    """Whether a failed build blames the precompiled header (or crashed on it) rather than the source."""
    return r.returncode < 0 or bool(re.search(r"\bPCH\b|precompiled|\.gch|internal compiler error|signal \d+|"
                                              r"Segmentation fault", r.stderr))


def _prelude(fresh=False) -> Path:
    """Both headers, precompiled once per key (the C++ standard headers they pull in cost most of a
    build): the header whose verified .gch lies beside it in the private directory. `fresh` builds the
    .gch again without asking the cache."""
    key = _key("pch")
    memo = (os.getpid(), key)  # a forked child's copy lives in its own private directory
    with _LOCK:  # threads compiling at once share one header file
        if not fresh and memo in _PRELUDE:
            return _PRELUDE[memo][0]
        name, entry = f"pch-{key[:24]}", ("precompiled header", key)
        header = diskcache.private_dir() / name / "tw_emulated.h"
        if not header.exists():  # never rewritten: another thread's g++ may be reading it
            header.parent.mkdir(parents=True, exist_ok=True)
            header.write_text(PRELUDE)
        built = fresh or diskcache.get_file(NAMESPACE, entry, f"{name}/tw_emulated.h.gch") is None
        if built:
            tmp = header.parent / "building.gch"
            flags = [f for f in FLAGS if f != "-shared"]
            r = _compile([compiler(), *flags, "-I", str(INCLUDE), "-x", "c++-header", "-o", str(tmp), str(header)])
            if r.returncode != 0:
                raise _failed("the header", r)
            os.replace(tmp, header.parent / "tw_emulated.h.gch")
            diskcache.put_file(NAMESPACE, entry, header.parent / "tw_emulated.h.gch")
        _PRELUDE[memo] = (header, built)
        return header


def _library(source: str, key: str, flags=(), failed=None):
    """(a verified private copy of the shared library for `source`, where it is kept: its cache entry,
    or that copy where the cache cannot keep it). `flags` go after FLAGS (they are part of `key`);
    `failed(r)` makes the error for source that does not compile (default: a code generator bug)."""
    entry, name = ("shared library", key), f"{key[:32]}.so"
    path = diskcache.get_file(NAMESPACE, entry, name)
    kept = path is not None
    if not kept:
        path = diskcache.private_dir() / name
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            src, out = Path(tmp) / "kernel.cpp", Path(tmp) / "kernel.so"
            src.write_text(source)
            cmd = lambda: [compiler(), *FLAGS, *flags, "-I", str(INCLUDE), "-include", str(_prelude()), "-o",
                           str(out), str(src)]
            r = _compile(cmd())
            if r.returncode != 0 and _rejects_header(r) and not _PRELUDE[os.getpid(), _key("pch")][1]:
                # a verified header that g++ still refuses (another build of the same compiler version):
                # dropped, built again once, and the kernel compiled against the new one
                diskcache.reject(NAMESPACE, ("precompiled header", _key("pch")), "the compiler rejected it")
                _prelude(fresh=True)
                r = _compile(cmd())
            if r.returncode != 0:
                raise failed(r) if failed else _failed("generated CUDA C++", r)
            os.replace(out, path)
        kept = diskcache.put_file(NAMESPACE, entry, path)
    return path, diskcache.entry_path(NAMESPACE, entry) if kept else path


def cache_entries(source: str) -> dict:
    """The disk-cache entries that serve `source`, whether or not they exist: {"library", "header"}."""
    return {"library": diskcache.entry_path(NAMESPACE, ("shared library", _key(source))),
            "header": diskcache.entry_path(NAMESPACE, ("precompiled header", _key("pch")))}


def build(source: str) -> Path:
    """Where the shared library for `source` is kept (compiled once per source, headers, flags and
    compiler): its disk-cache entry, or a file of this process's own where the cache cannot keep it."""
    return _library(source, _key(source))[1]


def build_user(source: str, flags=(), failed=None) -> Path:
    """A verified private copy of the shared library for hand-written CUDA C++ (tilewise.runtime's
    Program): built like generated code, against the same precompiled headers, with the user's `flags`
    (macros, include paths) and `failed(r)` to report a compile error as the user's, not as a bug."""
    return _library(source, _key(source, *flags), tuple(flags), failed)[0]


def load(source: str):
    key = _key(source)
    lib = _LIBS.get(key)
    if lib is None:
        path = _library(source, key)[0]
        with _LOCK:
            lib = _LIBS.get(key)
            if lib is None:
                try:
                    lib = ctypes.CDLL(str(path))
                except OSError as e:
                    raise TileLaunchError(f"cuda-emulated: cannot load the compiled kernel {path} ({e}); its "
                                          "directory is under TMPDIR, which must allow executable mappings") from None
                lib.tw_emulate.restype = ctypes.c_int
                lib.tw_emulate.argtypes = [ctypes.c_void_p] + [ctypes.c_uint] * 4 + [PRINT_FN]
                m = re.search(r"from kernel '([^']*)'", source)
                lib.tw_kernel_name = m.group(1) if m else path.stem
                _LIBS[key] = lib
    return lib


def pack(params, args):
    """One host buffer per kernel parameter (tw_array: pointer, shape, strides in elements; scalars in
    their dtype), in the order the generated kernel declares them."""
    bufs = []
    for p, a in zip(params, args):
        if isinstance(p.type, ArrayType):
            size = a.itemsize
            if any(s % size for s in a.strides):
                raise TileLaunchError(f"array strides {a.strides} are not multiples of its item size {size}")
            bufs.append(np.array([a.ctypes.data, *a.shape, *(s // size for s in a.strides)], np.int64))
        else:
            bufs.append(np.array(a, dtype=p.type.dtype.np).reshape(1))
    return bufs


def _value(ptr, dtype, shape):
    """A copy of one printed value (a scalar register or a tile in shared memory) as NumPy."""
    n = math.prod(shape)
    raw = (ctypes.c_char * (n * dtype.itemsize)).from_address(ptr)
    a = np.frombuffer(bytes(raw), dtype=dtype.np).reshape(shape)
    return a if shape else a[()]


def _printer(prints, out, errors):
    """The print callback: thread 0 of a CTA calls it (under a lock) with the values in place. Appends
    (place in the program, block, text) to `out`, formatted exactly as the reference backend does."""
    def cb(which, values, bx, by, bz):
        try:
            fmt, types, python, order = prints[which]
            vals = [_value(values[k], dt, shape) for k, (dt, shape) in enumerate(types)]
            trips = _value(values[len(types)], INT64, (max(1, len(order) - 1),))
            place = [x for pair in zip(order, trips.tolist()) for x in pair][:2 * len(order) - 2] + order[-1:]
            out.append((place, (bz, by, bx), _format(fmt, vals, python)))
        except BaseException as e:  # an exception cannot cross the C++ frames; re-raised after the launch
            errors.append(e)
    return PRINT_FN(cb)


def timeout():
    """Seconds a launch may take before it counts as hung (TILEWISE_EMULATOR_TIMEOUT; 0: no limit)."""
    return float(os.environ.get("TILEWISE_EMULATOR_TIMEOUT", "300"))


def _emulate(lib, args, keep=()):
    """lib.tw_emulate(*args) on a daemon thread (ctypes releases the GIL), waited for at most timeout()
    seconds: a kernel whose threads disagree on their barriers would otherwise block the process for
    ever. Those threads cannot be stopped from outside, so a hung launch leaks them (and holds the
    kernel's launch lock: its later launches time out too)."""
    limit = timeout()
    if limit <= 0:
        lib.tw_emulate(*args)
        return
    failure = []

    def work():
        try:
            lib.tw_emulate(*args)
        except BaseException as e:  # re-raised on the caller's thread
            failure.append(e)
    worker = threading.Thread(target=work, name="tilewise-emulator", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        _LEAKED.append((args, keep))  # the stuck threads still hold pointers into these buffers
        name = getattr(lib, "tw_kernel_name", "?")
        raise TileError(f"cuda-emulated: kernel '{name}' did not finish within {limit:g} s "
                        "(TILEWISE_EMULATOR_TIMEOUT); its threads are most likely stuck at a barrier that not "
                        "all of them reach. They keep running in the background (leaked, with the kernel's "
                        "arguments) and later launches of this kernel in this process will time out too.")
    if failure:
        raise failure[0]


def call(lib, bufs, grid, nthreads, prints=()):
    """Runs the kernel on packed parameters: one buffer per kernel parameter, then one holding the
    status pointer (the layout cuLaunchKernel takes). Prints go to sys.stdout after the launch."""
    params = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
    out, errors = [], []
    printer = _printer(prints, out, errors) if prints else PRINT_FN()
    try:
        _emulate(lib, (params, *grid, nthreads, printer), bufs)
    finally:  # in the reference backend's order (see printing.py); sys.stdout, so capsys sees it
        for _, _, text in sorted(out, key=lambda r: (r[0], r[1])):
            print(text, end="")
    if errors:
        raise errors[0]


def check_status(status, asserts):
    """Raise the TileAssertionError that a failed tw.assert_ left in the status words, if any."""
    if status[0]:
        msg, loc = asserts[status[0] - 1]
        raise TileAssertionError(f"assertion failed (block {tuple(int(b) for b in status[1:])}): {msg}", loc)


def run(lib, fn, args, grid, asserts, nthreads, prints=()):
    bufs = pack(fn.params, args)
    status = np.zeros(4, np.int32)
    bufs.append(np.array([status.ctypes.data], np.uint64))
    call(lib, bufs, grid, nthreads, prints)
    check_status(status, asserts)
