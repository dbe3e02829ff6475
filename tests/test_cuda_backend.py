"""The CUDA backend: its generated CUDA C++ runs under the host emulator ("cuda-emulated") and must match
the reference backend; the same source compiles with NVRTC for sm_80 and sm_90 where cuda-core is
installed (the [dev] extra that CI installs includes it; elsewhere those tests skip).

These tests choose their backends themselves instead of taking the shared `backend` fixture (which
also runs every other kernel test on cuda-emulated wherever g++ is found), so they run even with
TILEWISE_ENABLE_CUDA_EMULATED=0. Emulated CTAs run 16 threads here, so every block-strided loop of a
tile takes several trips."""
import math
import os
import shutil
import sys

import numpy as np
import pytest
from conftest import env, run_on

import tilewise as tw
from tilewise import backends
from tilewise.backends.cuda import EmulatedBackend, codegen

# softmax is the kernel of examples/softmax.py (the script runs main only as __main__)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"))
from softmax import softmax  # noqa: E402

ZERO = tw.PaddingMode.ZERO
pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="the CUDA emulator needs a host C++20 compiler (g++ or $CXX)")


@pytest.fixture(autouse=True)
def emulated(monkeypatch):
    monkeypatch.setitem(backends._FACTORIES, "cuda-emulated", EmulatedBackend)
    monkeypatch.setenv("TILEWISE_EMULATOR_THREADS", "16")


def on(backend):
    return env(TILEWISE_BACKEND=backend)


def rand(rng, shape, dtype, lo=-3.0, hi=3.0):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), size=shape, endpoint=True).astype(dtype)
    return rng.uniform(lo, hi, shape).astype(dtype)


# ---- kernels ------------------------------------------------------------------------------------

@tw.kernel
def vadd(a, b, c, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, i, tw.load(a, i, shape=T) + tw.load(b, i, shape=T))


@tw.kernel
def layer_norm(x, w, b, y, eps, TN: tw.Constant[int]):
    row = tw.bid(0)
    n = x.shape[1]
    acc = tw.zeros((1, TN), tw.float32)
    for j in range(tw.num_tiles(x, axis=1, shape=(1, TN))):
        acc += tw.load(x, (row, j), shape=(1, TN), padding_mode=ZERO)
    mean = tw.sum(acc, axis=1, keepdims=True) / n
    sq = tw.zeros((1, TN), tw.float32)
    for j in range(tw.num_tiles(x, axis=1, shape=(1, TN))):
        v = tw.load(x, (row, j), shape=(1, TN), padding_mode=ZERO)
        inside = j * TN + tw.arange(TN) < n
        sq += tw.where(inside, (v - mean) ** 2, 0)
    rstd = tw.rsqrt(tw.sum(sq, axis=1, keepdims=True) / n + eps)
    for j in range(tw.num_tiles(x, axis=1, shape=(1, TN))):
        v = tw.load(x, (row, j), shape=(1, TN), padding_mode=ZERO)
        ww = tw.load(w, j, shape=TN, padding_mode=ZERO)
        bb = tw.load(b, j, shape=TN, padding_mode=ZERO)
        tw.store(y, (row, j), (v - mean) * rstd * ww + bb)


@tw.kernel
def matmul(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    acc = tw.zeros((TM, TN), tw.float32)
    for k in range(tw.cdiv(a.shape[1], TK)):
        x = tw.load(a, (i, k), shape=(TM, TK), padding_mode=ZERO)
        y = tw.load(b, (k, j), shape=(TK, TN), padding_mode=ZERO)
        acc = tw.mma(x, y, acc)
    tw.store(c, (i, j), acc.astype(c.dtype))


@tw.kernel
def batched_matmul(a, b, c):
    x = tw.load(a, (0, 0, 0), shape=(2, 3, 5))
    y = tw.load(b, (0, 0, 0), shape=(2, 5, 4))
    tw.store(c, (0, 0, 0), x @ y)


@tw.kernel
def loops(out, lo, hi, step):
    b = tw.bid(0)
    s = 0
    n = 0
    for i in range(lo + b, hi, step):      # dynamic bounds, a different trip count per block
        for j in range(i % 3):             # inner bounds depend on the outer variable
            s += i * j
        n = n + 1
    k = 0
    v = b * 7 + 1
    while v != 1 and k < 100:              # Collatz: data-dependent trip count
        v = tw.where(v % 2 == 0, v // 2, 3 * v + 1)
        k += 1
    tw.store(out, (b, 0), s)
    tw.store(out, (b, 1), n)
    tw.store(out, (b, 2), k)


@tw.kernel
def branches(a, out, limit, T: tw.Constant[int]):
    b = tw.bid(0)
    x = tw.load(a, b, shape=T, padding_mode=ZERO)
    s = tw.sum(x)
    if s < 0:
        y = -x
    elif s < limit:
        y = x * 2
    else:
        y = tw.zeros((T,), tw.float32) + b
    p = x
    q = y
    for _ in range(b % 3):                 # swapping two carried tiles
        p, q = q, p
    tw.store(out, b, y + p * 10 + q * 100)


@tw.kernel
def copy2d(a, b, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    tw.store(b, (i, j), tw.load(a, (i, j), shape=(TM, TN)))


@tw.kernel
def reductions(x, xi, s0, s1, m0, m1, p1, am, ai, si, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, (0, 0), shape=(TM, TN))
    ti = tw.load(xi, (0, 0), shape=(TM, TN))
    tw.store(s0, 0, tw.sum(t, axis=0))
    tw.store(s1, (0, 0), tw.sum(t, axis=1, keepdims=True))
    tw.store(m0, 0, tw.max(t, axis=0))
    tw.store(m1, 0, tw.min(t, axis=1))
    tw.store(p1, 0, tw.prod(t, axis=1))
    tw.store(am, 0, tw.cat((tw.argmax(t, axis=1), tw.argmin(t, axis=1)), axis=0))
    tw.store(ai, 0, tw.argmax(ti, axis=0))
    total = tw.sum(ti) + tw.max(ti) * 1000     # 0-d reductions feed a scalar
    tw.store(si, 0, tw.full((1,), total, tw.int32))


@tw.kernel
def scans(x, xi, c0, c1, ci, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, (0, 0), shape=(TM, TN))
    tw.store(c0, (0, 0), tw.cumsum(t, axis=0))
    tw.store(c1, (0, 0), tw.cumprod(t, axis=1))
    tw.store(ci, (0, 0), tw.cumsum(tw.load(xi, (0, 0), shape=(TM, TN)), axis=1))


@tw.kernel
def shapes(x, out, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, (0, 0), shape=(TM, TN))
    r = t.reshape((TN, TM)).transpose()                        # (TM, TN)
    e = tw.extract(t, (1, 0), (TM // 2, TN))                   # bottom half
    c = tw.cat((e, tw.extract(t, (0, 0), (TM // 2, TN))), 0)   # halves swapped
    bc = tw.broadcast_to(tw.max(t, axis=1, keepdims=True), (TM, TN))
    tw.store(out, (0, 0), r + c * 10 + bc * 100)


@tw.kernel
def gather_scatter(a, idx, out, dst, T: tw.Constant[int]):
    i = tw.bid(0)
    ix = tw.load(idx, i, shape=T, padding_mode=ZERO)
    g = tw.gather(a, ix, mask=ix % 3 != 0, padding_value=-1.5)    # some indices out of range too
    tw.store(out, i, g)
    tw.scatter(dst, ix, g * 2, mask=ix >= 0)


@tw.kernel
def atomics(data, hist, arr, arr2, idx, vals, old_max, old_add, T: tw.Constant[int]):
    i = tw.bid(0)
    d = tw.load(data, i, shape=T, padding_mode=ZERO)
    valid = i * T + tw.arange(T) < data.shape[0]
    tw.atomic_add(hist, d, 1, mask=valid)                          # duplicates, result unused
    ix = tw.load(idx, i, shape=T)                                   # unique within a block
    v = tw.load(vals, i, shape=T)
    tw.store(old_max, i, tw.atomic_max(arr, ix, v))
    tw.store(old_add, i, tw.atomic_add(arr2, ix, v))  # another array: blocks may interleave max and add


@tw.kernel
def scalar_memory(a, out):
    b = tw.bid(0)
    tw.scatter(a, (b * 2,), b * 10 + 1)    # a scalar scatter: one thread writes...
    v = tw.gather(a, (b * 2,))             # ...and every thread reads it back
    o = tw.atomic_add(a, (b * 2 + 1,), v)  # a scalar atomic: one thread, the old value shared
    tw.store(out, b, tw.full((1,), v + o * 1000, tw.int32))


@tw.kernel
def spin_lock(lock, counter, REPS: tw.Constant[int]):
    for _ in range(REPS):
        while tw.atomic_cas(lock, 0, 0, 1) == 1:
            pass
        c = tw.load(counter, 0, shape=1)
        tw.store(counter, 0, c + 1)
        tw.atomic_xchg(lock, 0, 0)


def row(out, k, t):
    """Store a 1-D tile as row k of a 2-D array (a helper: inlined into the kernel)."""
    tw.store(out, (k, 0), t.reshape((1, t.shape[0])))


@tw.kernel
def int_semantics(x, y, out, T: tw.Constant[int]):
    a = tw.load(x, 0, shape=T)
    b = tw.load(y, 0, shape=T)
    row(out, 0, a // b)
    row(out, 1, a % b)
    row(out, 2, a << b)
    row(out, 3, a >> b)
    row(out, 4, a * b + (-a))
    row(out, 5, tw.abs(a) ^ ~b)
    row(out, 6, tw.minimum(a, b) - tw.maximum(a, b))
    row(out, 7, a ** (b % 4))


@tw.kernel
def float_semantics(x, y, fo, io, ho, bo, eo, TILE: tw.Constant[int]):
    a = tw.load(x, 0, shape=TILE)
    b = tw.load(y, 0, shape=TILE)
    row(fo, 0, a // b)
    row(fo, 1, a % b)
    row(fo, 2, tw.maximum(a, b))
    row(fo, 3, tw.floor(a) + tw.ceil(b) * tw.round(a))
    row(fo, 4, tw.where(tw.isnan(a) | tw.isinf(b), 1.0, 0.0))
    row(io, 0, a.astype(tw.int8).astype(tw.int32))                 # saturating, NaN -> 0
    row(io, 1, (a * 1e10).astype(tw.int64).astype(tw.int32) // 65536)
    row(io, 2, (a * 1e3).astype(tw.uint16).astype(tw.int32))
    h = a.astype(tw.float16)
    row(ho, 0, h * b.astype(tw.float16) + h)
    row(ho, 1, tw.exp(h))
    bf = a.astype(tw.bfloat16)
    row(bo, 0, bf * bf - b.astype(tw.bfloat16))
    row(bo, 1, (a.astype(tw.float64) * 1.0001).astype(tw.bfloat16))
    row(eo, 0, (a * 37).astype(tw.float8_e4m3fn).astype(tw.float32))
    row(eo, 1, (a * 9999).astype(tw.float8_e5m2).astype(tw.float32))
    row(eo, 2, a.astype(tw.tfloat32).astype(tw.float32) + tw.sigmoid(b) + tw.log1p(tw.abs(b)))


# ---- cases: (kernel, grid, args); every array argument is compared after the launch ---------------

def _mm(rng, dt):
    a, b = rand(rng, (21, 30), dt), rand(rng, (30, 13), dt)
    return matmul, (3, 2), (a, b, np.zeros((21, 13), np.float32), 8, 8, 8)


def _special(rng, n):
    """Random floats with the awkward values mixed in: zeros of both signs, infinities, NaN, ties."""
    v = rng.uniform(-300, 300, n).astype(np.float32)
    v[:12] = [0.0, -0.0, np.inf, -np.inf, np.nan, 2.5, -2.5, 0.5, 127.9, -1e30, 3.0, -7.0]
    return v


CASES = {
    "vadd": lambda r: (vadd, (8,), (rand(r, 1000, np.float32), rand(r, 1000, np.float32), np.zeros(1000, np.float32),
                                    128)),
    "vadd_f16_one_element": lambda r: (vadd, (1,), (rand(r, 1, np.float16), rand(r, 1, np.float16),
                                                     np.zeros(1, np.float16), 4)),
    "softmax": lambda r: (softmax, (10,), (rand(r, (37, 50), np.float32), np.zeros((37, 50), np.float32), 4, 64)),
    "layer_norm": lambda r: (layer_norm, (5,), (rand(r, (5, 45), np.float32), rand(r, 45, np.float32),
                                                 rand(r, 45, np.float32), np.zeros((5, 45), np.float32), 1e-5, 16)),
    "matmul_f32": lambda r: _mm(r, np.float32),
    "matmul_f16_f32": lambda r: _mm(r, np.float16),
    "batched_matmul_i32": lambda r: (batched_matmul, (1,), (rand(r, (2, 3, 5), np.int32), rand(r, (2, 5, 4), np.int32),
                                                             np.zeros((2, 3, 4), np.int32))),
    "loops": lambda r: (loops, (6,), (np.full((6, 3), -1, np.int32), -4, 20, 3)),
    "loops_down": lambda r: (loops, (5,), (np.full((5, 3), -1, np.int32), 9, -8, -2)),
    "branches": lambda r: (branches, (6,), (rand(r, 40, np.float32), np.zeros(40, np.float32), 2.0, 7)),
    "strided_views": lambda r: (copy2d, (3, 2), (rand(r, (20, 18), np.float64)[::-2, 3:14:2].T,
                                                  np.zeros((12, 18), np.float64)[::2, ::3], 2, 3)),
    "reductions": lambda r: (reductions, (1,), (
        rand(r, (5, 6), np.float32), rand(r, (5, 6), np.int32), np.zeros(6, np.float32), np.zeros((5, 1), np.float32),
        np.zeros(6, np.float32), np.zeros(5, np.float32), np.zeros(5, np.float32), np.zeros(10, np.int32),
        np.zeros(6, np.int32), np.zeros(1, np.int32), 5, 6)),
    "reductions_nan": lambda r: (reductions, (1,), (
        np.where(r.random((3, 4)) < 0.3, np.nan, rand(r, (3, 4), np.float32)).astype(np.float32),
        rand(r, (3, 4), np.int32), np.zeros(4, np.float32), np.zeros((3, 1), np.float32), np.zeros(4, np.float32),
        np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(6, np.int32), np.zeros(4, np.int32),
        np.zeros(1, np.int32), 3, 4)),
    "scans": lambda r: (scans, (1,), (rand(r, (4, 7), np.float32, 0.5, 1.5), rand(r, (4, 7), np.int8),
                                      np.zeros((4, 7), np.float32), np.zeros((4, 7), np.float32),
                                      np.zeros((4, 7), np.int8), 4, 7)),
    "shapes": lambda r: (shapes, (1,), (rand(r, (4, 6), np.float32), np.zeros((4, 6), np.float32), 4, 6)),
    "gather_scatter": lambda r: (gather_scatter, (4,), (
        rand(r, 30, np.float32), r.permutation(np.arange(-5, 27)).astype(np.int32), np.zeros(32, np.float32),
        np.zeros(30, np.float32), 8)),
    "atomics": lambda r: (atomics, (4,), (
        r.integers(0, 5, 29).astype(np.int32), np.zeros(5, np.int32), np.zeros(11, np.int32), np.ones(11, np.int32),
        np.concatenate([r.permutation(11)[:8] for _ in range(4)]).astype(np.int32), rand(r, 32, np.int32),
        np.zeros(32, np.int32), np.zeros(32, np.int32), 8)),
    "scalar_memory": lambda r: (scalar_memory, (5,), (rand(r, 10, np.int32), np.zeros(5, np.int32))),
    "spin_lock": lambda r: (spin_lock, (7,), (np.zeros(1, np.int32), np.zeros(1, np.int32), 3)),
    "int8_semantics": lambda r: _ints(r, np.int8),
    "int64_semantics": lambda r: _ints(r, np.int64),
    "uint16_semantics": lambda r: _ints(r, np.uint16),
    "float_semantics": lambda r: (float_semantics, (1,), (
        _special(r, 64), np.where(r.random(64) < 0.2, 0.0, rand(r, 64, np.float32, -9, 9)).astype(np.float32),
        np.zeros((5, 64), np.float32), np.zeros((3, 64), np.int32), np.zeros((2, 64), np.float16),
        np.zeros((2, 64), "bfloat16"), np.zeros((3, 64), np.float32), 64)),
}


def _ints(rng, dt):
    info = np.iinfo(dt)
    a = rng.integers(info.min, info.max, 48, endpoint=True).astype(dt)
    b = rng.integers(-9 if info.min else 0, 70, 48).astype(dt)
    a[:8] = [info.min, info.max, 0, 1, info.min, 7, 100 % (info.max + 1), info.max]
    b[:8] = [-1 if info.min else 3, 0, 0, 64 % (info.max + 1), 1, 0, 3, 66]
    return int_semantics, (1,), (a, b, np.zeros((8, 48), dt), 48)


TRANSCENDENTAL = {"softmax", "layer_norm", "float_semantics"}  # host libm vs NumPy: may differ in the last bit


def _run(name):
    """Every array argument of case `name` after its launch on the reference backend and on the emulator."""
    kernel, grid, args = CASES[name](np.random.default_rng(sum(map(ord, name))))
    return run_on(("reference", "cuda-emulated"), kernel, grid, args)


@pytest.mark.parametrize("name", sorted(CASES))
def test_emulated_matches_reference(name):
    want, got = _run(name)
    for k, (w, g) in enumerate(zip(want, got)):
        if w.dtype.kind not in "biuf":  # bfloat16/float8: compare as float32, so NaN matches NaN
            w, g = w.astype(np.float32), g.astype(np.float32)
        if name in TRANSCENDENTAL and w.dtype.kind == "f":
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=2e-6, atol=1e-6,
                                       err_msg=f"array argument {k}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"array argument {k}")


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_nvrtc_compiles(name, arch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    kernel, _, args = CASES[name](np.random.default_rng(0))
    c = tw.compile(kernel, args, target=f"cuda:{arch}")
    assert c.binary[:4] == b"\x7fELF"                     # a cubin
    assert 'extern "C" __global__' in c.code and codegen.kernel_name(c.function) in c.code
    assert c.resources["arch"] == arch and c.target == f"cuda:{arch}"


# ---- behaviour beyond matching outputs ------------------------------------------------------------

def test_strided_destination_untouched_outside_view():
    rng = np.random.default_rng(1)
    a = rand(rng, (9, 7), np.float32)
    big = np.full((20, 25), -7.0, np.float32)
    dst = big[1::2, 2::3][:9, :7]
    with on("cuda-emulated"):
        tw.launch(None, (3, 2), copy2d, (a, dst, 4, 4))
    np.testing.assert_array_equal(dst, a)
    mask = np.ones(big.shape, bool)
    mask[1::2, 2::3][:9, :7] = False
    assert (big[mask] == -7.0).all()


def test_full_thread_count(monkeypatch):
    """128 threads per CTA, as on the GPU (tiles smaller than the CTA leave threads idle)."""
    monkeypatch.setenv("TILEWISE_EMULATOR_THREADS", str(codegen.THREADS))
    want, got = _run("softmax")
    np.testing.assert_allclose(got[1], want[1], rtol=2e-6, atol=1e-7)


@tw.kernel
def checked(a, limit):
    v = tw.load(a, tw.bid(0), shape=1).item()
    tw.assert_(v < limit, "value over the limit")
    tw.store(a, tw.bid(0), tw.full((1,), v + 1, tw.int32))


def test_assert_reports_first_failing_block():
    a = np.array([1, 2, 9, 3, 12], np.int32)
    with on("cuda-emulated"), pytest.raises(tw.TileAssertionError, match=r"block \(2, 0, 0\).*over the limit"):
        tw.launch(None, (5,), checked, (a, 5))
    np.testing.assert_array_equal(a[:2], [2, 3])   # blocks run in order; the failing one stopped the launch


@tw.kernel
def fails_first(a):
    tw.assert_(tw.bid(0) < 1, "only block 0")  # before any barrier: a fast thread fails while others finish block 0
    tw.store(a, tw.bid(0), tw.load(a, tw.bid(0), shape=4) + 1.0)


def test_assert_before_any_barrier_does_not_hang(monkeypatch):
    """Every thread must see the same status at the end of a CTA (it hung on the first launch when each
    thread read it after the barrier: a thread already failing the next CTA's assert stopped a slow one)."""
    monkeypatch.setenv("TILEWISE_EMULATOR_TIMEOUT", "60")  # a regression fails instead of blocking the suite
    a = np.arange(32, dtype=np.float32)
    for _ in range(3):
        with on("cuda-emulated"), pytest.raises(tw.TileAssertionError, match=r"block \(1, 0, 0\).*only block 0"):
            tw.launch(None, (8,), fails_first, (a,))
    np.testing.assert_array_equal(a, np.r_[np.arange(4) + 3, np.arange(4, 32)])


def test_hung_launch_times_out(monkeypatch):
    """A launch that never finishes becomes a TileError naming the kernel after TILEWISE_EMULATOR_TIMEOUT."""
    import threading

    from tilewise.backends.cuda import emulator
    release = threading.Event()

    class Stuck:
        tw_kernel_name = "stuck_kernel"

        def tw_emulate(self, *args):
            release.wait(30)
    monkeypatch.setenv("TILEWISE_EMULATOR_TIMEOUT", "0.2")
    try:
        with pytest.raises(tw.TileError, match=r"kernel 'stuck_kernel' did not finish within 0.2 s.*leaked"):
            emulator.call(Stuck(), [np.zeros(1)], (1, 1, 1), 4)
    finally:
        release.set()


@tw.kernel
def printing(a):
    t = tw.load(a, index=(0,), shape=(4,))
    tw.printf("%d %5.1f %v %x %%\n", tw.bid(0), tw.max(t), tw.bid(0) > 0, tw.bid(0) + 10)
    print(f"sum={tw.sum(t):.2f} t={t}", t.reshape((2, 2)) > 1, tw.astype(t, tw.bfloat16), sep="|")
    if tw.bid(0) == 1:
        print("only block", tw.bid(0), tw.astype(t, tw.int8))
    for i in range(tw.bid(0) + 2):
        if i % 2 == 0:
            print("even", i, "block", tw.bid(0))
        j = i
        while j > 0:
            print("  while", i, j, "block", tw.bid(0))
            j -= 1
    print("done", tw.bid(0))


def test_printf_matches_reference(capfd):
    a = np.array([0.5, -1.25, 2.0, 3.0], np.float32)
    outs = {}
    for b in ("reference", "cuda-emulated"):
        with on(b):
            tw.launch(None, (1,), printing, (a,))
            tw.launch(None, (3,), printing, (a,))   # blocks interleave as in the reference: loop trip by trip
        outs[b] = capfd.readouterr().out
    assert outs["cuda-emulated"].count("only block 1 [ 0, -1,  2,  3]") == 1
    assert "0   3.0 False a %" in outs["cuda-emulated"]
    assert outs["cuda-emulated"] == outs["reference"]


@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvrtc_compiles_printf(arch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    c = tw.compile(printing, (np.zeros(4, np.float32),), target=f"cuda:{arch}")
    assert c.binary[:4] == b"\x7fELF"
    assert "tw_printf(" in c.code and "tw_print_tile(" in c.code
    assert c.resources["spill_store_bytes"] == 0


@tw.kernel
def undetermined(a, b, T: tw.Constant[int]):
    tw.store(b, 0, tw.load(a, 0, shape=T) + 1)


def test_poison_fills_undetermined_padding(monkeypatch):
    a = np.arange(5, dtype=np.float32)
    for poison, tail in (("0", 1.0), ("1", np.nan)):
        monkeypatch.setenv("TILEWISE_POISON", poison)
        got, want = np.zeros(8, np.float32), np.zeros(8, np.float32)
        with on("cuda-emulated"):
            tw.launch(None, (1,), undetermined, (a, got, 8))
        with on("reference"):
            tw.launch(None, (1,), undetermined, (a, want, 8))
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, np.r_[a + 1, [tail] * 3])


def test_shared_memory_is_reused():
    """Dead tiles give their shared memory back: softmax's nine tiles fit in far less than their sum."""
    c = tw.compile(softmax, (np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32), 4, 64),
                   target="cuda-emulated")
    one = 4 * 64 * 4
    assert c.resources["shared_bytes"] <= 3 * one + 64
    assert f"tw_smem[{c.resources['shared_bytes']}]" in c.code


def test_disk_cache(monkeypatch, tmp_path):
    from tilewise.backends.cuda import emulator
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(tmp_path))
    src = codegen.generate(vadd.lower(tw.runtime.args.classify(vadd, (np.zeros(4, np.float32),) * 3 + (4,))[0]))[0]
    lib = emulator.build(src)
    assert lib.parent == tmp_path / "cuda-emulated" and lib.exists()
    stamp = lib.stat().st_mtime_ns
    assert emulator.build(src) == lib and lib.stat().st_mtime_ns == stamp


def test_nvrtc_arch_support():
    pytest.importorskip("cuda.core")
    from tilewise.backends.cuda import nvrtc
    (major, _), archs = nvrtc.version()
    if 70 in archs:
        assert tw.compile(vadd, (np.zeros(4, np.float32),) * 3 + (4,), target="cuda:sm_70").binary[:4] == b"\x7fELF"
    else:  # CUDA 13's NVRTC starts at sm_75
        with pytest.raises(tw.TileUnsupportedError, match="sm_70"):
            tw.compile(vadd, (np.zeros(4, np.float32),) * 3 + (4,), target="cuda:sm_70")
    with pytest.raises(tw.TileLaunchError, match="cuda:sm_90"):
        tw.compile(vadd, (np.zeros(4, np.float32),) * 3 + (4,), target="cuda:hopper")


def test_cuda_backend_without_a_gpu_says_so_before_any_work():
    """TILEWISE_BACKEND=cuda runs host arrays on the GPU; with no driver the launch fails clearly and
    leaves the output untouched."""
    pytest.importorskip("cuda.core")
    if os.environ.get("TILEWISE_EMULATE_GPU") == "1":
        pytest.skip("the emulated device stands in for a GPU")
    try:
        tw.Device("cuda:0")
        pytest.skip("a GPU is present")
    except tw.TileError:
        pass
    a = np.arange(4, dtype=np.float32)
    c = np.full(4, 7.0, np.float32)
    with on("cuda"), pytest.raises(tw.TileLaunchError, match="no usable CUDA driver"):
        tw.launch(None, (1,), vadd, (a, a, c, 4))
    assert (c == 7.0).all()


def test_unravel_and_ravel_agree_with_numpy():
    shape = (3, 1, 4, 5)
    for flat in (0, 7, 59):
        coords = [eval(e, {}, {"i": flat}) if e != "0" else 0 for e in
                  (c.replace("/", "//") for c in codegen.unravel("i", shape))]
        assert tuple(coords) == np.unravel_index(flat, shape)
        assert eval(codegen.ravel([str(c) for c in coords], shape)) == flat < math.prod(shape)


@tw.kernel
def wide_rows_minus_max(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    rows = tw.load(x, index=(tw.bid(0), 0), shape=(TM, TN), padding_mode=ZERO)
    tw.store(y, index=(tw.bid(0), 0), tile=rows - tw.max(rows, axis=1, keepdims=True))


@pytest.mark.parametrize("arch, fits", [("sm_80", True), ("sm_75", False)])
def test_kernels_over_48_kb_of_shared_memory_run_where_the_arch_allows(monkeypatch, rng, arch, fits):
    """64 KB of rows: dynamic shared memory on the emulated sm_80 (163 KB per CTA), refused on sm_75."""
    monkeypatch.setenv("TILEWISE_EMULATED_ARCH", arch)
    wide_rows_minus_max.runtime_cache.clear()
    x = rand(rng, (37, 1000), np.float32)
    y = np.full_like(x, np.nan)
    with on("cuda-emulated"):
        if not fits:
            with pytest.raises(tw.TileUnsupportedError, match=f"on {arch}"):
                tw.launch(None, (3,), wide_rows_minus_max, (x, y, 16, 1024))
            return
        tw.launch(None, (3,), wide_rows_minus_max, (x, y, 16, 1024))
        assert "TW_DYNAMIC_SHARED" in tw.compile(wide_rows_minus_max, (x, y, 16, 1024), target="cuda-emulated").code
    np.testing.assert_array_equal(y, x - x.max(axis=1, keepdims=True))
