"""tilewise.runtime's Program -> ObjectCode -> Kernel -> launch for hand-written CUDA C++, on the emulated
device (the host compiler against emulator.h), and NVRTC's PTX with no GPU."""
import shutil

import numpy as np
import pytest

import tilewise as tw
from tilewise.runtime import CompileError, KernelArgumentError, LaunchConfig, Program, ProgramOptions, launch

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="the emulated device needs g++")


@pytest.fixture(autouse=True)
def emulated(monkeypatch, tmp_path):
    monkeypatch.setenv("TILEWISE_EMULATE_GPU", "1")
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(tmp_path / "cache"))


SRC = r'''
extern "C" __global__ void vadd(const float* a, const float* b, float* c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}

// Block sums through static shared memory, a 2-d block, and a thread that returns before the barrier.
__global__ void block_sum(const double* x, double* out, unsigned n) {
  __shared__ double part[64];
  unsigned t = threadIdx.y * blockDim.x + threadIdx.x;
  unsigned i = blockIdx.x * 64 + t;
  part[t] = i < n ? x[i] : 0.0;
  __syncthreads();
  if (t != 0) return;
  double s = 0;
  for (unsigned k = 0; k < blockDim.x * blockDim.y; ++k) s += part[k];
  out[blockIdx.x] = s;
}

// Reverses each block's slice through dynamic shared memory (LaunchConfig.shmem_size).
extern "C" __global__ void reverse(int* x) {
  extern __shared__ __align__(16) int buf[];
  unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
  buf[t] = x[base + t];
  __syncthreads();
  x[base + t] = buf[blockDim.x - 1 - t];
}

extern "C" __global__ void scalars(double* out, signed char a, unsigned short b, long long c, float d,
                                   double e, bool f) {
  out[0] = a; out[1] = b; out[2] = (double)c; out[3] = d; out[4] = e; out[5] = f;
}

template <typename T>
__global__ void axpy(T alpha, const T* x, T* y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] += alpha * x[i];
}

extern "C" __global__ void count(unsigned* total) { atomicAdd(total, 1u); }
'''


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TILEWISE_EMULATE_GPU", "1")
    mp.setenv("TILEWISE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    obj = Program(SRC, options=ProgramOptions(name="user.cu")).compile(
        "cubin", name_expressions=("axpy<float>", "axpy<double>"))
    mp.undo()
    return obj


def test_vector_add(code):
    n = 1000
    rng = np.random.default_rng(0)
    a, b = rng.random(n, np.float32), rng.random(n, np.float32)
    da, db, dc = tw.to_device(a), tw.to_device(b), tw.empty(n, np.float32)
    stream = tw.Device().create_stream()
    launch(stream, LaunchConfig(grid=(n + 127) // 128, block=128), code.get_kernel("vadd"), da, db, dc, n)
    stream.synchronize()
    np.testing.assert_array_equal(tw.to_host(dc), a + b)
    assert code.code_type == "cubin" and code.code[:4] == b"\x7fELF"  # the host library


def test_tw_launch_takes_both_forms(code):
    a = tw.to_device(np.arange(8, dtype=np.float32))
    c = tw.empty(8, np.float32)
    tw.launch(None, LaunchConfig(grid=1, block=8), code.get_kernel("vadd"), a, a, c, np.int32(8))
    np.testing.assert_array_equal(tw.to_host(c), 2 * np.arange(8, dtype=np.float32))
    with pytest.raises(TypeError, match="LaunchConfig"):
        tw.launch(None, 1, code.get_kernel("vadd"), (a, a, c, 8))


def test_shared_memory_2d_block_and_early_return(code):
    x = np.random.default_rng(1).random(300)
    out = tw.empty(5, np.float64)
    launch(None, LaunchConfig(grid=5, block=(16, 4)), code.get_kernel("block_sum"), tw.to_device(x), out, 300)
    expect = [x[i * 64:(i + 1) * 64].sum() for i in range(5)]
    np.testing.assert_allclose(tw.to_host(out), expect)


def test_dynamic_shared_memory(code):
    x = np.arange(4 * 32, dtype=np.int32)
    d = tw.to_device(x)
    launch(None, LaunchConfig(grid=4, block=32, shmem_size=32 * 4), code.get_kernel("reverse"), d)
    np.testing.assert_array_equal(tw.to_host(d), x.reshape(4, 32)[:, ::-1].ravel())


def test_scalar_dtypes(code):
    out = tw.empty(6, np.float64)
    k = code.get_kernel("scalars")
    launch(None, LaunchConfig(grid=1, block=1), k, out, np.int8(-5), np.uint16(65535), np.int64(2**40),
           np.float32(0.5), 1 / 3, True)
    np.testing.assert_array_equal(tw.to_host(out), [-5, 65535, 2.0**40, 0.5, 1 / 3, 1])
    launch(None, LaunchConfig(grid=1, block=1), k, out, -5, 7, 3, 0.1, 2, False)  # Python scalars: declared types
    np.testing.assert_array_equal(tw.to_host(out), [-5, 7, 3, np.float32(0.1), 2, 0])


def test_template_kernel_by_name_expression(code):
    for dt in (np.float32, np.float64):
        x, y = np.arange(10, dtype=dt), np.ones(10, dt)
        dy = tw.to_device(y)
        name = f"axpy<{'float' if dt == np.float32 else 'double'}>"
        launch(None, LaunchConfig(grid=1, block=32), code.get_kernel(name), dt(2), tw.to_device(x), dy, 10)
        np.testing.assert_array_equal(tw.to_host(dy), 2 * x + 1)
    with pytest.raises(tw.TileLaunchError, match="name_expressions"):
        code.get_kernel("axpy")


def test_atomics(code):
    total = tw.to_device(np.zeros(1, np.uint32))
    launch(None, LaunchConfig(grid=3, block=(8, 2, 2)), code.get_kernel("count"), total)
    assert tw.to_host(total)[0] == 96


def test_argument_errors(code):
    k = code.get_kernel("vadd")
    a = tw.empty(4, np.float32)
    cfg = LaunchConfig(grid=1, block=4)
    with pytest.raises(KernelArgumentError, match=r"takes 4 arguments \(a, b, c, n\), got 3"):
        launch(None, cfg, k, a, a, a)
    with pytest.raises(TypeError, match=r"argument 3 \('n'\).*float"):
        launch(None, cfg, k, a, a, a, 4.0)
    with pytest.raises(TypeError, match=r"argument 3 \('n'\).*int64.*np.int32"):
        launch(None, cfg, k, a, a, a, np.int64(4))
    with pytest.raises(TypeError, match=r"argument 1 \('b'\).*host NumPy array"):
        launch(None, cfg, k, a, np.zeros(4, np.float32), a, 4)
    with pytest.raises(TypeError, match=r"argument 0 \('a'\).*pointer parameter.*str"):
        launch(None, cfg, k, "a", a, a, 4)
    with pytest.raises(TypeError, match=r"argument 3 \('n'\) of kernel 'vadd' = 4294967296 does not fit.*int32"):
        launch(None, cfg, k, a, a, a, 2**32)
    with pytest.raises(tw.TileLaunchError, match="has no kernel 'vsub'.*vadd"):
        code.get_kernel("vsub")


def test_compile_error_shows_the_compiler_message():
    bad = 'extern "C" __global__ void k(float* x) {\n  x[0] = undefined_name;\n}\n'
    with pytest.raises(CompileError, match=r"bad\.cu:2:.*undefined_name"):
        Program(bad, options=ProgramOptions(name="bad.cu")).compile("cubin")


def test_define_macro():
    src = 'extern "C" __global__ void k(int* x) { x[threadIdx.x] = SCALE * threadIdx.x; }'
    obj = Program(src, options=ProgramOptions(define_macro=("SCALE", "3"))).compile("cubin")
    d = tw.empty(4, np.int32)
    launch(None, LaunchConfig(grid=1, block=4), obj.get_kernel("k"), d)
    np.testing.assert_array_equal(tw.to_host(d), [0, 3, 6, 9])


def test_ptx_through_nvrtc_without_a_gpu():
    pytest.importorskip("cuda.bindings.nvrtc")
    obj = Program(SRC, options=ProgramOptions(arch="sm_80")).compile("ptx", name_expressions=("axpy<float>",))
    assert obj.code_type == "ptx" and ".visible .entry vadd(" in obj.code
    assert obj.symbol_mapping["axpy<float>"].startswith("_Z4axpyIfEvT_PKS0_PS0_i")
    with pytest.raises(CompileError, match="(?s)NVRTC.*undefined_name"):
        Program('extern "C" __global__ void k() { undefined_name; }',
                options=ProgramOptions(arch="sm_80")).compile("ptx")
