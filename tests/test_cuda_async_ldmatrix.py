"""ldmatrix feeding the tensor cores and cp.async tile loads in the CUDA backend. Under the host emulator
(which exchanges ldmatrix row addresses across the warp with the PTX ISA's fragment layout, and queues
cp.async copies per thread until the wait) the results agree with the reference backend; a deliberately
wrong ldmatrix layout and a missing cp.async wait both make them disagree, so these tests can fail.
Loads in for loops are double-buffered where that is safe (and only there). NVRTC compiles the paths
for sm_80/sm_90 without spills, and sm_75 keeps the plain loads."""
import os
import shutil

import ml_dtypes
import numpy as np
import pytest
from conftest import env, random_array

import tilewise as tw
from tilewise import backends
from tilewise.backends.cuda import EmulatedBackend, emulator
from tilewise.backends.cuda.nvrtc import compile_ptx

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="the CUDA emulator needs a host C++20 compiler (g++ or $CXX)")


@pytest.fixture(autouse=True)
def emulated(monkeypatch):
    monkeypatch.setitem(backends._FACTORIES, "cuda-emulated", EmulatedBackend)


def run_on(backend, kernel, grid, args, threads):
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    with env(TILEWISE_BACKEND=backend, TILEWISE_EMULATOR_THREADS=str(threads)):
        tw.launch(None, grid, kernel, copies)
    return [a for a in copies if isinstance(a, np.ndarray)]


# ---- ldmatrix + mma.sync ------------------------------------------------------------------------------

@tw.kernel
def mma_loop(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    acc = tw.load(c, (i, j), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)   # the accumulate form
    for k in range(tw.num_tiles(a, axis=1, shape=(TM, TK))):
        x = tw.load(a, (i, k), shape=(TM, TK), padding_mode=tw.PaddingMode.ZERO)
        y = tw.load(b, (k, j), shape=(TK, TN), padding_mode=tw.PaddingMode.ZERO)
        acc = tw.mma(x, y, acc)
    tw.store(c, (i, j), acc)


@tw.kernel
def matmul_once(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    x = tw.load(a, (tw.bid(0), 0), shape=(TM, TK), padding_mode=tw.PaddingMode.ZERO)
    y = tw.load(b, (0, tw.bid(1)), shape=(TK, TN), padding_mode=tw.PaddingMode.ZERO)
    tw.store(c, (tw.bid(0), tw.bid(1)), tw.matmul(x, y))       # narrow result: fp16/bf16 out


def _mma_args(rng, dtype, m, n, k):
    a = (rng.standard_normal((m, k)) * 2).astype(dtype)
    b = (rng.standard_normal((k, n)) * 2).astype(dtype)
    return a, b, rng.standard_normal((m, n)).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("mnk, tiles, threads", [((40, 20, 70), (32, 16, 32), 64),     # partial tiles everywhere
                                                 ((16, 8, 16), (16, 8, 16), 32),       # one fragment, one warp
                                                 ((64, 40, 48), (64, 32, 16), 128),    # 3 K steps, 16 mma tiles
                                                 ((17, 9, 33), (16, 8, 16), 64)])      # one row/column/k past
def test_ldmatrix_mma_matches_reference(rng, dtype, mnk, tiles, threads):
    (m, n, k), (tm, tn, tk) = mnk, tiles
    a, b, c = _mma_args(rng, dtype, m, n, k)
    grid = (tw.cdiv(m, tm), tw.cdiv(n, tn))
    ref = run_on("reference", mma_loop, grid, (a, b, c, tm, tn, tk), threads)[2]
    got = run_on("cuda-emulated", mma_loop, grid, (a, b, c, tm, tn, tk), threads)[2]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)              # fp32 accumulation
    want = a.astype(np.float64) @ b.astype(np.float64) + c
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_ldmatrix_matmul_narrow_result(rng, dtype):
    m, n, k = 48, 24, 32
    a, b, _ = _mma_args(rng, dtype, m, n, k)
    c = np.zeros((m, n), dtype)
    args, grid = (a, b, c, 16, 8, 32), (3, 3)
    ref = run_on("reference", matmul_once, grid, args, 64)[2].astype(np.float64)
    got = run_on("cuda-emulated", matmul_once, grid, args, 64)[2].astype(np.float64)
    ulp = 2.0 ** -7 if dtype is ml_dtypes.bfloat16 else 2.0 ** -10   # one rounding of the fp32 sum apart at most
    np.testing.assert_allclose(got, ref, rtol=ulp, atol=ulp)


def test_wrong_ldmatrix_layout_is_caught(rng, monkeypatch):
    """emulator.h's TW_EMU_LDMATRIX_SWAP=1 swaps the plain and transposed fragment layouts: wrong results."""
    m, n, k = 32, 16, 32
    a, b, c = _mma_args(rng, np.float16, m, n, k)
    args, grid = (a, b, c, 32, 16, 32), (1, 1)
    ref = run_on("reference", mma_loop, grid, args, 64)[2]
    monkeypatch.setattr(emulator, "FLAGS", emulator.FLAGS + ["-DTW_EMU_LDMATRIX_SWAP=1"])
    got = run_on("cuda-emulated", mma_loop, grid, args, 64)[2]
    assert np.abs(got - ref).max() > 1.0


# ---- cp.async tile loads ------------------------------------------------------------------------------

PADS = [tw.PaddingMode.ZERO, tw.PaddingMode.UNDETERMINED, tw.PaddingMode.NEG_INF, tw.PaddingMode.NAN]


def _copy_kernel(mode):
    @tw.kernel
    def copy_tiles(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
        t = tw.load(x, (tw.bid(0), tw.bid(1)), shape=(TM, TN), padding_mode=mode)
        tw.store(y, (tw.bid(0), tw.bid(1)), t)
    return copy_tiles


COPY = [_copy_kernel(mode) for mode in PADS]


def _copy_both(x, tm, tn, pad, threads=16):
    rows, cols = tw.cdiv(x.shape[0], tm) * tm, tw.cdiv(x.shape[1], tn) * tn
    y = np.zeros((rows, cols), x.dtype)                  # the padded tiles land here whole
    grid = (rows // tm, cols // tn)
    return [run_on(b, COPY[pad], grid, (x, y, tm, tn), threads)[1] for b in ("reference", "cuda-emulated")]


@pytest.mark.parametrize("dtype, tn", [(np.float32, 8),          # 16-byte pieces of 4 elements (cg)
                                       (np.float64, 6),          # of 2
                                       (np.float16, 16),         # of 8
                                       (np.int8, 16),            # of 16
                                       (np.float32, 3),          # whole elements: 4-byte cp.async.ca
                                       (np.int64, 5)])           # 8-byte cp.async.ca
@pytest.mark.parametrize("pad", [0, 1, 2, 3])
def test_cp_async_loads_match_reference(rng, dtype, tn, pad):
    if pad >= 2 and not np.issubdtype(dtype, np.floating):
        pytest.skip("-inf/NaN padding needs a float dtype")
    x = random_array(rng, (13, 37), dtype)                # partial tiles: 37 % tn, partial 16-byte pieces
    ref, got = _copy_both(x, 4, tn, pad)
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("view", ["offset", "strided", "transposed"])
def test_cp_async_views(rng, view):
    base = random_array(rng, (20, 41), np.float32)
    x = {"offset": base[1:, 1:],                # rows not 16-byte aligned: the element path
         "strided": base[::2, ::2],             # innermost stride 2
         "transposed": base.T}[view]
    for pad in (0, 2):
        ref, got = _copy_both(x, 4, 8, pad)
        np.testing.assert_array_equal(got, ref)


def test_missing_cp_async_wait_is_caught(rng):
    """Without the wait, the emulator's queued copies never land: the tile holds stale shared memory."""
    x = random_array(rng, (8, 32), np.float32)
    y = np.zeros_like(x)
    args = (x, y, 8, 32)
    exe = tw.compile(COPY[0], args, target="cuda-emulated").executable
    assert exe.code.count("tw_cp_async_wait<0>();") == 1
    for code, ok in ((exe.code, True), (exe.code.replace("tw_cp_async_wait<0>();", ""), False)):
        out = np.zeros_like(x)
        emulator.run(emulator.load(code), exe.fn, (x, out, 8, 32), (1, 1, 1), exe.asserts, 16)
        assert np.array_equal(out, x) == ok


# ---- double buffering in for loops ----------------------------------------------------------------------

@tw.kernel
def k_sum(x, y, START: tw.Constant[int], STOP: tw.Constant[int], STEP: tw.Constant[int],
          TM: tw.Constant[int], TN: tw.Constant[int]):
    acc = tw.full((TM, TN), 0.0, tw.float32)
    for k in range(START, STOP, STEP):
        t = tw.load(x, (tw.bid(0), k), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
        u = tw.load(x, (tw.bid(0), k // 2 + 1), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_ZERO)
        acc = (acc * 0.5 + t - u).astype(tw.float32)
    tw.store(y, (tw.bid(0), 0), acc)


@tw.kernel
def carried_index(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    acc = tw.full((TM, TN), 0.0, tw.float32)
    j = 0
    for k in range(3):
        acc = acc * 0.5 + tw.load(x, (tw.bid(0), j), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
        j = j + 2                                           # a carried index: not known an iteration early
    tw.store(y, (tw.bid(0), 0), acc)


@tw.kernel
def store_in_loop(x, y, TM: tw.Constant[int], TN: tw.Constant[int]):
    for k in range(tw.num_tiles(x, axis=1, shape=(TM, TN))):
        t = tw.load(x, (tw.bid(0), k), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
        tw.store(y, (tw.bid(0), k), t * 2)                  # writes global memory: no early copies


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("start, stop, step", [(0, 5, 1), (1, 6, 2), (4, -1, -1), (3, 3, 1), (0, 1, 1)])
def test_double_buffered_loop(rng, dtype, start, stop, step):
    x = random_array(rng, (10, 45), dtype)                  # 45 % 8: the last tiles are partial
    y = np.zeros((12, 8), np.float32)
    args, grid = (x, y, start, stop, step, 4, 8), (3,)
    exe = tw.compile(k_sum, args, target="cuda-emulated").executable
    assert "tw_cp_async_wait<1>();" in exe.code
    ref = run_on("reference", k_sum, grid, args, 16)[1]
    got = run_on("cuda-emulated", k_sum, grid, args, 16)[1]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kernel", [carried_index, store_in_loop])
def test_loops_that_stay_single_stage(rng, kernel):
    x = random_array(rng, (8, 40), np.float32)
    y = np.zeros((8, 40), np.float32)
    exe = tw.compile(kernel, (x, y, 4, 8), target="cuda-emulated").executable
    assert "tw_cp_async_wait<1>" not in exe.code and "tw_cp_async_wait<0>();" in exe.code
    ref = run_on("reference", kernel, (2,), (x, y, 4, 8), 16)[1]
    got = run_on("cuda-emulated", kernel, (2,), (x, y, 4, 8), 16)[1]
    np.testing.assert_array_equal(got, ref)


def test_missing_pipeline_wait_is_caught(rng):
    """Dropping the wait for iteration k's copies (only the last iteration waits) gives wrong sums."""
    x = random_array(rng, (4, 48), np.float32)
    y = np.zeros((4, 8), np.float32)
    args = (x, y, 0, 5, 1, 4, 8)
    exe = tw.compile(k_sum, args, target="cuda-emulated").executable
    ref = run_on("reference", k_sum, (1,), args, 16)[1]
    for code, ok in ((exe.code, True), (exe.code.replace("tw_cp_async_wait<1>();", ""), False)):
        out = np.zeros_like(y)
        emulator.run(emulator.load(code), exe.fn, (x, out) + args[2:], (1, 1, 1), exe.asserts, 16)
        assert np.allclose(out, ref, rtol=1e-6, atol=1e-6) == ok


# ---- NVRTC: the instructions are there for sm_80/sm_90, without spills; sm_75 keeps the plain path --------

@pytest.mark.parametrize("arch", ["sm_75", "sm_80", "sm_90"])
def test_nvrtc_compiles_ldmatrix_and_cp_async(arch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    target, new = f"cuda:{arch}", arch != "sm_75"
    h, f = np.zeros((64, 64), np.float16), np.zeros((64, 64), np.float32)
    compiled = {"mma": tw.compile(mma_loop, (h, h, f, 32, 16, 32), target=target),
                "mma_bf16": tw.compile(mma_loop, (h.astype(ml_dtypes.bfloat16),) * 2 + (f, 64, 32, 16), target=target),
                "vec": tw.compile(COPY[0], (f, f, 4, 8), target=target),
                "elem": tw.compile(COPY[3], (f, f, 4, 3), target=target)}
    for name, c in compiled.items():
        r = c.resources
        assert r["spill_store_bytes"] == 0 and r["spill_load_bytes"] == 0 and r["stack_bytes"] == 0, (name, r)
        assert 0 < r["registers"] <= 128, (name, r)
    assert "tw_ldmatrix_x4(" in compiled["mma"].code and "tw_ldmatrix_x2_trans(" in compiled["mma"].code
    assert "tw_cp_async<16>(" in compiled["vec"].code and "tw_cp_async<4>(" in compiled["elem"].code
    assert "tw_cp_async_wait<1>();" in compiled["mma"].code                  # the K loop is double-buffered
    for name in ("mma", "mma_bf16"):
        ptx = compile_ptx(compiled[name].code, arch)
        assert ("cp.async.wait_group 1" in ptx) == new
        assert ("ldmatrix.sync.aligned.m8n8.x4.shared.b16" in ptx) == new
        assert ("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16" in ptx) == new
        assert ("cp.async.cg.shared.global" in ptx) == new      # the operand tiles' loads
    vec, elem = compile_ptx(compiled["vec"].code, arch), compile_ptx(compiled["elem"].code, arch)
    for ptx in (vec, elem):
        assert ("cp.async.commit_group" in ptx and "cp.async.wait_group 0" in ptx) == new
    assert ("cp.async.cg.shared.global" in vec) == new and ("ld.global.v4.u32" in vec) == (not new)
    assert ("cp.async.ca.shared.global" in elem) == new
