"""The CUDA backend's fast paths against the reference backend, under the host emulator: warp-shuffle
reductions (both plans: lanes per row and CTA-wide, NaN, argmax ties), 128-bit loads/stores with
their run-time fallback (misaligned, strided, partial pieces), elementwise chains fused into one loop,
and tensor-core mma (fp16/bf16 -> fp32) with the PTX fragment layout that emulator.h rebuilds. Then the
generated code and NVRTC's PTX contain each path for the right targets (sm_75 keeps the scalar
matmul; NVRTC 13 has no sm_70), without spills."""
import os
import shutil

import ml_dtypes
import numpy as np
import pytest
from conftest import env, run_on

import tilewise as tw
from tilewise import backends
from tilewise.backends.cuda import EmulatedBackend
from tilewise.backends.cuda.nvrtc import compile_ptx

pytestmark = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                                reason="the CUDA emulator needs a host C++20 compiler (g++ or $CXX)")


@pytest.fixture(autouse=True)
def emulated(monkeypatch):
    monkeypatch.setitem(backends._FACTORIES, "cuda-emulated", EmulatedBackend)


def on(backend, threads=16):
    return env(TILEWISE_BACKEND=backend, TILEWISE_EMULATOR_THREADS=str(threads))


def both(kernel, grid, args, threads=16, outs=None):
    """The arrays after the launch on the reference backend and on the emulator."""
    return run_on(("reference", "cuda-emulated"), kernel, grid, args, outs, TILEWISE_EMULATOR_THREADS=str(threads))


@tw.kernel
def reductions(x, xi, of, oi, TM: tw.Constant[int], TN: tw.Constant[int]):
    t = tw.load(x, (tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    ti = tw.load(xi, (tw.bid(0), 0), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    r = tw.bid(0) * 6
    tw.store(of, (r, 0), tw.sum(t, axis=1).reshape((1, TM)))
    tw.store(of, (r + 1, 0), tw.max(t, axis=1).reshape((1, TM)))
    tw.store(of, (r + 2, 0), tw.min(t, axis=1).reshape((1, TM)))
    tw.store(of, (r + 3, 0), tw.prod(t * 0.25 + 1, axis=1).reshape((1, TM)))
    tw.store(of, (r + 4, 0), tw.full((1, TM), tw.sum(t) + tw.max(ti) * 1000, tw.float32))  # 0-d results
    tw.store(oi, (r, 0), tw.argmax(t, axis=1).reshape((1, TM)))
    tw.store(oi, (r + 1, 0), tw.argmin(t, axis=1).reshape((1, TM)))
    tw.store(oi, (r + 2, 0), tw.max(ti, axis=1).reshape((1, TM)))
    tw.store(oi, (r + 3, 0), tw.min(ti, axis=1).reshape((1, TM)))
    tw.store(oi, (r + 4, 0), tw.sum(ti, axis=0).reshape((1, TN)))   # down the columns: strided lanes


@pytest.mark.parametrize("threads", [16, 64])
@pytest.mark.parametrize("tm,tn", [(5, 37), (2, 70)])   # lanes per row; CTA-wide (few, long rows)
def test_shuffle_reductions(rng, tm, tn, threads):
    rows = 2 * tm - 1                                      # the second tile is partial
    x = rng.standard_normal((rows, tn)).astype(np.float32)
    x[0, 3] = x[0, 9] = np.nan                             # first NaN wins argmax/argmin; max/min are NaN
    x[1, :] = 1.5                                          # ties: the lowest index
    x[rows - 1, tn - 1] = np.nan
    xi = rng.integers(-100, 100, (rows, tn)).astype(np.int32)
    of, oi = np.zeros((12, max(tm, tn)), np.float32), np.zeros((12, max(tm, tn)), np.int32)
    want, got = both(reductions, (2,), (x, xi, of, oi, tm, tn), threads)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got[3], want[3])


@tw.kernel
def scale_copy(a, b, TM: tw.Constant[int], TN: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    t = tw.load(a, (i, j), shape=(TM, TN), padding_mode=tw.PaddingMode.ZERO)
    tw.store(b, (i, j), tw.maximum(t * 2 + 1, tw.zeros((TM, TN), t.dtype) - 3))   # one fused loop


@pytest.mark.parametrize("dtype,tn", [(np.float32, 8), (np.float16, 16), (np.float64, 4)])
@pytest.mark.parametrize("view", ["aligned", "offset", "strided", "dst_strided"])
def test_vector_access_and_fallbacks(rng, dtype, tn, view):
    base = (rng.standard_normal((13, 2 * 26 + 1)) * 3).astype(dtype)
    src = {"offset": base[:, 1:27], "strided": base[:, ::2]}.get(view, np.ascontiguousarray(base[:, :26]))
    dst_base = np.full((13, 53), 7, dtype)
    dst = dst_base[:, ::2] if view == "dst_strided" else dst_base[:, :26]
    if view in ("aligned", "offset"):
        assert src.ctypes.data % 16 == (0 if view == "aligned" else dtype().itemsize) or view == "offset"
    (want,), (got,) = both(scale_copy, (tw.cdiv(13, 4), tw.cdiv(26, tn)), (src, dst, 4, tn), outs=[1])
    assert got.base.shape == dst_base.shape and got.strides == dst.strides   # a fresh copy of the same view
    np.testing.assert_array_equal(got.base, want.base)   # outside the view untouched; 26 % tn: partial pieces


@tw.kernel
def mma_kernel(a, b, c, TM: tw.Constant[int], TN: tw.Constant[int], TK: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    acc = tw.full((TM, TN), 0.5, tw.float32)
    for k in range(tw.num_tiles(a, axis=1, shape=(TM, TK))):
        x = tw.load(a, (i, k), shape=(TM, TK), padding_mode=tw.PaddingMode.ZERO)
        y = tw.load(b, (k, j), shape=(TK, TN), padding_mode=tw.PaddingMode.ZERO)
        acc = tw.mma(x, y, acc)
    tw.store(c, (i, j), acc)


@pytest.mark.parametrize("threads", [64, 16])     # 16: not a whole warp, the scalar loop
@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_tensor_core_mma(rng, dtype, threads):
    m, n, k = 40, 20, 70                              # partial tiles in every dimension
    a = (rng.standard_normal((m, k)) * 2).astype(dtype)
    b = (rng.standard_normal((k, n)) * 2).astype(dtype)
    c = np.zeros((m, n), np.float32)
    with on("cuda-emulated", threads):
        tw.launch(None, (tw.cdiv(m, 32), tw.cdiv(n, 16)), mma_kernel, (a, b, c, 32, 16, 32))
    want = a.astype(np.float64) @ b.astype(np.float64) + 0.5
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-4)   # fp32 accumulation


# ---- the generated code takes the fast paths; NVRTC compiles them for sm_75/80/90 without spills -------

def _compiled(target):
    x = np.zeros((8, 70), np.float32)
    h = np.zeros((64, 64), np.float16)
    return {"reductions": tw.compile(reductions, (x, x.astype(np.int32), x, x.astype(np.int32), 2, 70),
                                     target=target),
            "scale_copy": tw.compile(scale_copy, (x, x, 4, 8), target=target),
            "mma": tw.compile(mma_kernel, (h, h, h.astype(np.float32), 32, 16, 32), target=target)}


def test_generated_code_has_fast_paths():
    pytest.importorskip("cuda.bindings.nvrtc")
    c = _compiled("cuda:sm_80")
    assert "tw_shfl_xor(acc, 16)" in c["reductions"].code and "tw_arg_combine" in c["reductions"].code
    assert "tw_cp_async<16>(" in c["scale_copy"].code and "tw_store16(" in c["scale_copy"].code  # loads: cp.async
    assert c["scale_copy"].code.count("tw_sync();") == 2          # load; the fused chain and the store
    assert "tw_mma_m16n8k16<tw_f16>" in c["mma"].code and "__CUDA_ARCH__ >= 800" in c["mma"].code
    h = np.zeros((64, 64), np.float32)
    assert "tw_mma_m16n8k16" not in tw.compile(mma_kernel, (h, h, h, 32, 16, 32), target="cuda:sm_80").code


@pytest.mark.parametrize("arch", ["sm_75", "sm_80", "sm_90"])
def test_ptx_and_resources(arch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    for name, c in _compiled(f"cuda:{arch}").items():
        r = c.resources
        assert r["spill_store_bytes"] == 0 and r["spill_load_bytes"] == 0 and r["stack_bytes"] == 0, (name, r)
        assert 0 < r["registers"] <= 128, (name, r)
    c = _compiled(f"cuda:{arch}")
    assert "shfl.sync.bfly.b32" in compile_ptx(c["reductions"].code, arch)
    ptx = compile_ptx(c["scale_copy"].code, arch)
    # 128-bit loads are cp.async on sm_80+ (tests/test_cuda_async_ldmatrix.py), ld.global.v4 before.
    load = "ld.global.v4.u32" if arch == "sm_75" else "cp.async.cg.shared.global"
    assert load in ptx and "st.global.v4.u32" in ptx
    mma = "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32" in compile_ptx(c["mma"].code, arch)
    assert mma == (arch != "sm_75")
