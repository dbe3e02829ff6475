"""Runs a compiled kernel's blocks over a pool of threads.

Each worker repeatedly takes the next chunk of linear block indices and calls the compiled
`tw_run(args, meta, first, last, grid..., status)` through ctypes, which releases the GIL, so blocks
run in parallel. Tile buffers live on the worker's stack; the pool's threads are created with a stack
big enough for the kernel's frame."""
from __future__ import annotations

import ctypes
import math
import os
import queue
import threading
import time

import numpy as np

from ...errors import TileAssertionError, TileLaunchError, TileUnsupportedError
from ...ir.types import ArrayType, TileType
from ...support.hostmem import data_pointer

_SIGNATURE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                              ctypes.c_int32, ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p)
_STATUS = ctypes.c_int32 * 4  # [failed assert's number, its block's x, y, z]
_MAIN_STACK_BUDGET = 1 << 20   # frames up to this size may also run on the launching thread
_MIN_STACK = 16 << 20
# The most stack one block's tiles may take. A worker's stack is sized to twice the frame (so at most
# 2 GiB here), which the operating system grants a thread on ordinary machines (a tile of 2**31 elements
# asked for 16 GiB and got "can't start new thread"); LLVM itself refuses frames of 4 GiB. Three of the
# largest float64 tiles (tilewise.frontend.limits) fit.
MAX_FRAME_BYTES = 512 << 20


_CPU_COUNT = os.cpu_count() or 1  # os.cpu_count() costs ~10 us: once per process, not per launch
# A launch whose blocks are expected to take less than this in all runs on the calling thread: waking
# the pool's workers costs tens of microseconds (more on a busy machine), which small grids never win back.
_SEQUENTIAL_BELOW_S = 100e-6


def num_threads():
    env = os.environ.get("TILEWISE_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise TileLaunchError(f"TILEWISE_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise TileLaunchError(f"TILEWISE_NUM_THREADS must be a positive integer, got {env!r}")
        return n
    return _CPU_COUNT


class _Pool:
    """Daemon worker threads sharing one job queue; all threads of a pool have one stack size."""

    def __init__(self, stack):
        self.stack, self.threads, self.jobs = stack, [], queue.SimpleQueue()
        self.lock = threading.Lock()

    def ensure(self, n):
        with self.lock, _STACK_LOCK:
            old = threading.stack_size()
            threading.stack_size(self.stack)
            try:
                while len(self.threads) < n:
                    t = threading.Thread(target=self._work, name=f"tilewise-cpu-{len(self.threads)}", daemon=True)
                    try:
                        t.start()
                    except RuntimeError as e:
                        # Out of memory or of threads: fewer workers still finish every block (each job
                        # runs until no chunk is left), none at all cannot.
                        if self.threads:
                            break
                        raise TileLaunchError(
                            f"could not start a worker thread with a {self.stack >> 20} MiB stack ({e}); the "
                            "kernel's tiles need that much stack per block: use smaller tiles, or set "
                            "TILEWISE_NUM_THREADS lower") from None
                    self.threads.append(t)
            finally:
                threading.stack_size(old)

    def _work(self):
        while True:
            job, done = self.jobs.get()
            try:
                job()
            finally:
                done.release()


_STACK_LOCK = threading.Lock()
_POOLS = {}


def _pool(frame_bytes):
    stack = _MIN_STACK
    while stack < 2 * frame_bytes + (1 << 20):
        stack *= 2
    with _STACK_LOCK:
        pool = _POOLS.get(stack)
        if pool is None:
            pool = _POOLS[stack] = _Pool(stack)
    return pool


def _check_frame(fn, frame_bytes):
    """Refuse, before any block runs, a kernel whose tile buffers would not fit a worker's stack; point at
    the op that makes the largest tile (fusion decides which tiles get buffers, so it is a fair guess)."""
    if frame_bytes <= MAX_FRAME_BYTES:
        return
    ops = [op for op in fn.walk() if op.results and isinstance(op.results[0].type, TileType)]

    def size(op):
        return math.prod(op.results[0].type.shape) * op.results[0].type.dtype.itemsize
    big = max(ops, key=size, default=None)
    what = f"; the largest is {big.results[0].type} ({size(big):,} bytes)" if big else ""
    raise TileUnsupportedError(
        f"kernel '{fn.name}' needs {frame_bytes:,} bytes of stack per block for the tiles it keeps in memory "
        f"on the cpu backend, more than the {MAX_FRAME_BYTES:,} bytes ({MAX_FRAME_BYTES >> 20} MiB) a block may "
        f"use{what}; use smaller tile shapes, or fewer large tiles live at once", big.loc if big else None)


class Launcher:
    def __init__(self, fn, address, frame_bytes, meta_size, asserts, sequential=False):
        _check_frame(fn, frame_bytes)
        self.fn, self.frame_bytes, self.meta_size, self.asserts = fn, frame_bytes, meta_size, asserts
        self.sequential = sequential  # blocks in grid order on one thread (kernels that print)
        self.entry = _SIGNATURE(address)
        self.params = [(p.type, p.name) for p in fn.params]
        self.block_s = None  # the last measured run time per block, which picks one thread or the pool
        self._ptr_table = ctypes.c_void_p * max(len(self.params), 1)
        self._meta_table = ctypes.c_int64 * max(meta_size, 1)

    def _pack(self, args):
        """(argument pointer table, metadata: shapes and strides in elements, objects to keep alive)."""
        ptrs = self._ptr_table()
        meta = self._meta_table()
        keep, off = [], 0
        for i, ((t, name), a) in enumerate(zip(self.params, args)):
            if isinstance(t, ArrayType):
                item, nd = a.dtype.itemsize, a.ndim
                strides = a.strides
                if any(s % item for s in strides):
                    raise TileLaunchError(f"array '{name}' has strides {strides} that are not a multiple of its "
                                          f"element size {item}; pass a copy (np.ascontiguousarray)")
                meta[off:off + nd] = a.shape
                meta[off + nd:off + 2 * nd] = [s // item for s in strides]
                off += 2 * nd
                ptrs[i] = data_pointer(a)
                keep.append(a)
            else:
                with np.errstate(all="ignore"):
                    v = np.full(1, a, dtype=t.dtype.np)
                keep.append(v)
                ptrs[i] = data_pointer(v)
        return ptrs, meta, keep

    def run(self, args, grid):
        gx, gy, gz = grid
        total = gx * gy * gz
        ptrs, meta, keep = self._pack(args)
        status = _STATUS()
        call_args = (ctypes.addressof(ptrs), ctypes.addressof(meta))
        tail = (gx, gy, gz, ctypes.addressof(status))
        threads = 1 if self.sequential else min(num_threads(), total)
        if threads > 1 and self.block_s is not None and self.block_s * total < _SEQUENTIAL_BELOW_S:
            threads = 1
        small = self.frame_bytes <= _MAIN_STACK_BUDGET
        if threads <= 1 and small:
            t0 = time.perf_counter()
            self.entry(*call_args, 0, total, *tail)
            self.block_s = (time.perf_counter() - t0) / total
        else:
            self._parallel(call_args, tail, total, threads, small)
        del keep
        if status[0]:
            msg, loc = self.asserts[status[0] - 1]
            raise TileAssertionError(f"assertion failed (block {tuple(int(b) for b in status[1:])}): {msg}", loc)

    def _parallel(self, call_args, tail, total, threads, small):
        chunk = max(1, total // (threads * 8))
        starts = iter(range(0, total, chunk))
        lock = threading.Lock()

        def work():
            """Runs chunks until none is left; returns (blocks, seconds) spent in compiled code."""
            blocks, seconds = 0, 0.0
            while True:
                with lock:
                    first = next(starts, None)
                if first is None:
                    return blocks, seconds
                last = min(first + chunk, total)
                t0 = time.perf_counter()
                self.entry(*call_args, first, last, *tail)
                seconds += time.perf_counter() - t0
                blocks += last - first
        pool = _pool(self.frame_bytes)
        helpers = threads - 1 if small else threads
        pool.ensure(helpers)
        done = threading.Semaphore(0)
        for _ in range(helpers):
            pool.jobs.put((work, done))
        if small:  # the calling thread's own blocks time the kernel, without the cost of waking the pool
            blocks, seconds = work()
            if blocks:
                self.block_s = seconds / blocks
        for _ in range(helpers):
            done.acquire()
