"""The CUDA runtime (devices, streams, events, device arrays, launches with device arrays) on the
emulated device: the same path a GPU takes, with host memory standing in for device memory and each
stream a worker thread, so a missing synchronisation shows up here too."""
import gc

import ml_dtypes
import numpy as np
import pytest

import tilewise as tw
from tilewise import backends
from tilewise.runtime import dlpack
from tilewise.runtime.device_launch import _regions
from tilewise.tools.demo import softmax

pytestmark = pytest.mark.skipif("cuda-emulated" not in backends.available(), reason="needs a host C++ compiler")


@pytest.fixture(autouse=True)
def emulated(monkeypatch):
    monkeypatch.setenv("TILEWISE_EMULATE_GPU", "1")
    monkeypatch.setenv("TILEWISE_EMULATOR_THREADS", "32")  # fewer threads per CTA: faster, same results


@tw.kernel
def vadd(a, b, c, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, (i,), tw.load(a, (i,), (T,)) + tw.load(b, (i,), (T,)))



@tw.kernel
def scale(x, s):
    i = tw.bid(0)
    tw.store(x, (i,), tw.load(x, (i,), (16,)) * s)


@tw.kernel
def checked(x):
    t = tw.load(x, (0,), (8,))
    tw.assert_(tw.min(t) >= 0, "negative input")


class CAI:
    """The smallest __cuda_array_interface__ producer (what Numba, CuPy and PyTorch expose)."""

    def __init__(self, arr, readonly=False):
        self.arr = arr
        self.__cuda_array_interface__ = {"shape": arr.shape, "typestr": arr.dtype.str, "version": 3,
                                         "data": (arr.ptr, readonly), "strides": arr.strides}


class DLPackOnly:
    """A CUDA array that speaks only DLPack (as JAX does)."""

    def __init__(self, arr):
        self.arr = arr

    def __dlpack__(self, **kw):
        return self.arr.__dlpack__(**kw)

    def __dlpack_device__(self):
        return self.arr.__dlpack_device__()


def test_devices_and_names():
    devs = tw.devices()
    assert [d.name for d in devs] == ["cuda-emulated:0", "cuda-emulated:1"]
    assert tw.Device() is tw.Device("cuda:0") is tw.Device(0) is tw.Device("cuda-emulated:0") is devs[0]
    assert tw.Device("cuda:1") is devs[1] and devs[0].arch.startswith("sm_") and devs[0].target == "cuda:sm_80"
    assert "emulator" in devs[0].info()["driver"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint16, np.bool_, ml_dtypes.bfloat16])
def test_round_trip(rng, dtype):
    from conftest import random_array
    x = random_array(rng, (5, 7), dtype)
    d = tw.to_device(x)
    assert (d.shape, d.dtype, d.strides, d.device) == (x.shape, x.dtype, x.strides, tw.Device())
    np.testing.assert_array_equal(d.to_host(), x)
    np.testing.assert_array_equal(tw.to_host(d), x)
    np.testing.assert_array_equal(np.asarray(d), x)


def test_round_trip_edge_shapes(rng):
    for shape in [(1,), (0,), (3, 0), (2, 3, 5), ()]:
        x = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_array_equal(tw.to_device(x).to_host(), x)


def test_non_contiguous_host_input_and_device_views(rng):
    base = rng.standard_normal((6, 10)).astype(np.float32)
    x = base[::2, 1::3]  # a strided host array is copied in C order
    d = tw.to_device(x)
    np.testing.assert_array_equal(d.to_host(), x)
    full = tw.to_device(base)
    for key in [(slice(None), slice(None, None, 2)), (slice(1, 5), slice(None, None, -3)), (2,), (slice(None), 3),
                (None, slice(2, 4))]:
        view = full[key]
        assert not isinstance(view.to_host(), tw.DeviceArray)
        np.testing.assert_array_equal(view.to_host(), base[key])
    np.testing.assert_array_equal(full.T.to_host(), base.T)
    assert not full.T.is_c_contiguous and full.is_c_contiguous
    with pytest.raises(tw.TileLaunchError, match="basic indexing"):
        full[np.array([0, 1])]


@pytest.mark.parametrize("n", [1, 100, 257])
def test_vector_add_on_device(rng, n):
    a, b = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    da, db, dc = tw.to_device(a), tw.to_device(b), tw.empty(n, np.float32)
    tw.launch(None, (tw.cdiv(n, 64),), vadd, (da, db, dc, 64))
    np.testing.assert_array_equal(dc.to_host(), a + b)


def test_strided_device_views_as_arguments(rng):
    a = rng.standard_normal((4, 50)).astype(np.float32)
    d = tw.to_device(a)
    out = tw.to_device(np.zeros(50, np.float32))
    tw.launch(None, (4,), vadd, (d[1], d[3, ::-1], out[::2], 16))  # rows, a reversed row, a strided output
    host = out.to_host()
    np.testing.assert_array_equal(host[::2], a[1, :25] + a[3, ::-1][:25])
    np.testing.assert_array_equal(host[1::2], 0)


def test_softmax_on_device(rng):
    x = rng.standard_normal((37, 19)).astype(np.float32)
    dy = tw.empty(x.shape, np.float32)
    tw.launch(tw.Device().default_stream, (tw.cdiv(37, 4),), softmax, (tw.to_device(x), dy, 4, 32))
    x64 = x.astype(np.float64)
    ref = np.exp(x64 - x64.max(1, keepdims=True))
    np.testing.assert_allclose(dy.to_host(), ref / ref.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_scalars_and_cache_per_device(rng):
    x = rng.standard_normal(32).astype(np.float32)
    for dev in tw.devices():
        d = tw.to_device(x, device=dev)
        tw.launch(None, (2,), scale, (d, 2.5))
        np.testing.assert_array_equal(d.to_host(), x * np.float32(2.5))
    keys = [k for k in scale.runtime_cache if isinstance(k[1], str) and "@" in k[1]]
    assert {k[1] for k in keys} == {"cuda:sm_80@cuda-emulated:0", "cuda:sm_80@cuda-emulated:1"}


def test_streams_run_in_order_and_events_order_streams(rng):
    dev = tw.Device()
    x = rng.standard_normal(64).astype(np.float32)
    s1, s2 = dev.create_stream(), tw.Stream()
    d = tw.to_device(x, stream=s1)
    start = s1.record()
    for _ in range(3):
        tw.launch(s1, (4,), scale, (d, 2.0))  # queued: each waits for the one before
    done = s1.record(tw.Event())
    s2.wait(done)
    out = tw.empty(64, np.float32, stream=s2)
    tw.launch(s2, (1,), vadd, (d, d, out, 64))  # runs after s1's work, as s2 waits on `done`
    np.testing.assert_array_equal(out.to_host(stream=s2), x * 16)
    assert done.query() and start.elapsed_time(done) >= 0
    s1.synchronize()
    dev.synchronize()


def test_stream_kinds(rng):
    x = rng.standard_normal(16).astype(np.float32)
    s = tw.Device().create_stream()
    d = tw.to_device(x, stream=s)  # on the default stream the copy would race with the first launch on s

    class Foreign:  # e.g. a CuPy or PyTorch stream
        def __cuda_stream__(self):
            return (0, s.handle)
    for stream in [s, Foreign(), s.handle]:
        tw.launch(stream, (1,), scale, (d, 2.0))
    s.synchronize()  # the default stream is another queue: without this the two would race on `d`
    for stream in [0, None]:
        tw.launch(stream, (1,), scale, (d, 2.0))
    np.testing.assert_array_equal(d.to_host(), x * 32)
    for bad, msg in [("s0", "stream must be"), (12345, "not a stream"), (tw.Device(1).create_stream(), "is on")]:
        with pytest.raises(tw.TileLaunchError, match=msg):
            tw.launch(bad, (1,), scale, (d, 2.0))


def test_mixed_and_multi_device_errors(rng):
    x = rng.standard_normal(16).astype(np.float32)
    d0, d1 = tw.to_device(x, device=0), tw.to_device(x, device="cuda:1")
    with pytest.raises(tw.TileLaunchError, match="argument 'b' of kernel 'vadd' is a host array"):
        tw.launch(None, (1,), vadd, (d0, x, tw.empty(16, np.float32), 16))
    with pytest.raises(tw.TileLaunchError, match="argument 'a' of kernel 'vadd' is a host array"):
        tw.launch(None, (1,), vadd, (x, d0, d0, 16))
    with pytest.raises(tw.TileLaunchError, match="argument 'b'.* is on cuda-emulated:1 but argument 'a'"):
        tw.launch(None, (1,), vadd, (d0, d1, d0, 16))
    with pytest.raises(tw.TileLaunchError, match="no CUDA device 7"):
        tw.Device("cuda:7")
    with pytest.raises(tw.TileLaunchError, match="unknown device"):
        tw.Device("tpu:0")


def test_read_only_device_array_and_foreign_arrays(rng):
    x = rng.standard_normal(16).astype(np.float32)
    d = tw.to_device(x)
    ro = CAI(d, readonly=True)
    with pytest.raises(tw.TileLaunchError, match="writes to 'x', which is a read-only device array"):
        tw.launch(None, (1,), scale, (ro, 2.0))
    out = tw.empty(16, np.float32)
    tw.launch(None, (1,), vadd, (ro, DLPackOnly(d), CAI(out), 16))  # reading a read-only array is fine
    np.testing.assert_array_equal(tw.to_host(CAI(out)), 2 * x)
    np.testing.assert_array_equal(tw.to_host(DLPackOnly(out)), 2 * x)


def test_cuda_array_interface_and_dlpack_export(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    d = tw.to_device(x)
    cai = d.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (4, 6) and cai["typestr"] == "<f4"
    assert cai["data"] == (d.ptr, False) and cai["strides"] is None
    assert d[:, ::2].__cuda_array_interface__["strides"] == (24, 8)
    assert d.__dlpack_device__() == (dlpack.CUDA, 0)
    view = d[1:, ::2]
    im = dlpack.read(view)
    assert (im.ptr, im.shape, im.strides, im.dtype, im.device) == (view.ptr, (3, 3), (24, 8), np.float32,
                                                                   (dlpack.CUDA, 0))
    del im
    gc.collect()
    assert not dlpack._LIVE  # the deleter ran


def test_dlpack_layout_against_numpy_and_torch(rng):
    """Our capsule layout, checked by real consumers: export host memory as a CPU tensor."""
    x = rng.standard_normal((5, 8)).astype(np.float32)[:, ::2]

    class Host:
        def __dlpack__(self, **kw):
            return dlpack.export(x.ctypes.data, x.shape, x.strides, x.dtype, (dlpack.CPU, 0), x)

        def __dlpack_device__(self):
            return (dlpack.CPU, 0)
    np.testing.assert_array_equal(np.from_dlpack(Host()), x)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(torch.from_dlpack(Host()).numpy(), x)
    im = dlpack.read(torch.arange(6, dtype=torch.bfloat16).reshape(2, 3).T)
    assert (im.shape, im.strides, im.dtype) == ((3, 2), (2, 6), ml_dtypes.bfloat16)


def test_torch_cpu_tensors_take_the_host_path(rng, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("TILEWISE_BACKEND", "reference")
    a, b = torch.randn(40), torch.randn(40)
    c = torch.empty(40)
    tw.launch(None, (3,), vadd, (a, b, c, 16))
    np.testing.assert_array_equal(c.numpy(), (a + b).numpy())
    with pytest.raises(tw.TileLaunchError, match="argument 'b' of kernel 'vadd' is a host array \\(Tensor\\)"):
        tw.launch(None, (3,), vadd, (tw.to_device(a.numpy()), b, tw.empty(40, np.float32), 16))


def test_assert_on_device_then_recover(rng):
    with pytest.raises(tw.TileAssertionError, match="negative input"):
        tw.launch(None, (1,), checked, (tw.to_device(-np.ones(8, np.float32)),))
    tw.launch(None, (1,), checked, (tw.to_device(np.ones(8, np.float32)),))  # the status was reset


def test_compile_for_device_arrays():
    d = tw.empty(64, np.float32)
    c = tw.compile(scale, (d, 1.0))
    assert c.target == "cuda:sm_80" and "__global__" in c.code


def test_cuda_backend_on_host_arrays_keeps_aliasing(rng, monkeypatch):
    """TILEWISE_BACKEND=cuda (what gpu_check runs the suite with): host arrays go to the device, run,
    come back; arrays sharing memory share it on the device too."""
    pytest.importorskip("cuda.core")
    monkeypatch.setenv("TILEWISE_BACKEND", "cuda")
    y = rng.standard_normal(40).astype(np.float32)
    expect = y.copy()
    expect[::2] = y[::2] + y[1::2]
    tw.launch(None, (2,), vadd, (y[::2], y[1::2], y[::2], 16))
    np.testing.assert_array_equal(y, expect)
    regions = _regions([y[::2], y[1::2], np.zeros(3)])
    assert sorted(len(r[2]) for r in regions) == [1, 2]


def test_gpu_check_without_a_gpu_says_so(monkeypatch, capsys):
    from tilewise.tools import gpu_check
    monkeypatch.delenv("TILEWISE_EMULATE_GPU")
    if tw.devices():
        pytest.skip("this machine has a GPU")
    assert gpu_check.main(["--no-tests"]) == 2
    assert "no GPU to check" in capsys.readouterr().err
    with pytest.raises(tw.TileLaunchError, match="TILEWISE_EMULATE_GPU=1"):
        tw.Device("cuda:0")


def test_gpu_check_report_block():
    from tilewise.tools import gpu_check
    rows = [("vector add fp32", "1,000", 2.0, 12e9, "GB/s", 0.0, 1.0, None),
            ("matmul fp16", "4096^3", 1.0, 2e12, "TFLOP/s", 1e-3, None, None)]
    text = gpu_check.report({"name": "H100", "arch": "sm_90", "driver": "CUDA 12.8", "nvrtc": "13.0"}, "5 passed",
                            3000.0, rows)
    assert "| vector add fp32 | 1,000 | 2.000 | 6000.0 GB/s | 200% | 0.0e+00 | 1.000 | 0.50x | n/a |" in text
    assert "| matmul fp16 | 4096^3 | 1.000 | 2000.0 TFLOP/s |  |" in text and "nvrtc 13.0" in text


def test_the_cuda_driver_opts_into_dynamic_shared_memory(monkeypatch):
    """driver_cuda.py against a stand-in for cuda.core/cuda.bindings (no GPU here): a kernel over 48 KB
    opts in once at load, up to the device's limit, and every launch requests its bytes."""
    from types import SimpleNamespace

    from tilewise.backends.cuda import codegen
    from tilewise.runtime import driver_cuda
    calls, kernel = [], SimpleNamespace(handle="kernel-handle")
    cu = SimpleNamespace(
        CUresult=SimpleNamespace(CUDA_SUCCESS=0),
        CUfunction_attribute=SimpleNamespace(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES="max-dynamic"),
        CUdevice=lambda n: ("device", n),
        cuKernelSetAttribute=lambda *a: calls.append(("set", *a)) or (0,),
        cuLaunchKernel=lambda *a: calls.append(("launch", *a)) or (0,))
    module = SimpleNamespace(get_kernel=lambda name: kernel)
    core = SimpleNamespace(ObjectCode=SimpleNamespace(from_cubin=lambda binary: module))
    monkeypatch.setattr(driver_cuda, "_core", lambda: (core, cu))
    monkeypatch.setattr(codegen, "kernel_name", lambda fn: "k")
    drv = object.__new__(driver_cuda.CudaDriver)
    drv._cu, drv.ordinal, drv.name = cu, 1, "a GPU"
    drv.device = SimpleNamespace(properties=SimpleNamespace(max_shared_memory_per_block_optin=100_000))
    exe = SimpleNamespace(binary=b"", fn=SimpleNamespace(name="wide"), resources={"dynamic_shared_bytes": 65_600})
    loaded = drv.load(exe)
    assert calls == [("set", "max-dynamic", 65_600, "kernel-handle", ("device", 1))]
    drv.launch(loaded, (4, 1, 1), 128, [np.zeros(2)], SimpleNamespace(cu="stream"), shared=65_600)
    assert calls[1][:9] == ("launch", "kernel-handle", 4, 1, 1, 128, 1, 1, 65_600) and calls[1][9] == "stream"
    exe.resources["dynamic_shared_bytes"] = 100_001
    with pytest.raises(tw.TileLaunchError, match="needs 100001 bytes of shared memory per block; a GPU allows 100000"):
        drv.load(exe)
    exe.resources["dynamic_shared_bytes"] = 0
    calls.clear()
    drv.load(exe)
    assert calls == []   # 48 KB or less: static shared memory, nothing to opt into
