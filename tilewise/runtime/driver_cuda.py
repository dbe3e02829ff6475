"""The driver for real GPUs: cuda.core for devices, streams, events, memory and modules; cuda.bindings'
cuLaunchKernel for launches, because a kernel takes `tw_array` structs by value, which cuda.core's
argument packing does not (the runtime packs each parameter into its own buffer instead)."""
from __future__ import annotations

import ctypes

from ..errors import TileLaunchError
from .driver_base import DeviceDriver, DriverEvent, DriverStream


def _core():
    try:
        import cuda.core as core
        from cuda.bindings import driver as cu
    except ImportError:
        raise TileLaunchError("running on a GPU needs the [cuda] extra: pip install 'tilewise[cuda]' "
                              "(cuda-core, cuda-bindings, nvidia-cuda-nvrtc)") from None
    return core, cu


def _no_driver(e):
    return TileLaunchError(f"no usable CUDA driver or GPU on this machine ({e}); to run the GPU path on the "
                           "host, set TILEWISE_EMULATE_GPU=1 or name the device 'cuda-emulated:0'")


def _check(result, what):
    err = result[0] if isinstance(result, tuple) else result
    _, cu = _core()
    if err != cu.CUresult.CUDA_SUCCESS:
        _, msg = cu.cuGetErrorString(err)
        raise TileLaunchError(f"CUDA error in {what}: {err.name} ({msg.decode() if msg else '?'})")
    return result[1:] if isinstance(result, tuple) else ()


def device_count():
    core, cu = _core()
    try:
        _check(cu.cuInit(0), "cuInit")
        return _check(cu.cuDeviceGetCount(), "cuDeviceGetCount")[0]
    except TileLaunchError:
        raise
    except Exception as e:  # the driver library is missing: cuda.pathfinder raises a RuntimeError
        raise _no_driver(e) from None


def pointer_ordinal(ptr):
    """The device ordinal that owns `ptr`, or None if it is not device memory CUDA knows."""
    _, cu = _core()
    attr = cu.CUpointer_attribute.CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL
    err, ordinal = cu.cuPointerGetAttribute(attr, ptr)
    return int(ordinal) if err == cu.CUresult.CUDA_SUCCESS else None


class CudaStream(DriverStream):
    def __init__(self, stream):
        _, cu = _core()
        self.stream = stream
        self.handle = int(stream.handle)
        self.cu = cu.CUstream(self.handle)

    def synchronize(self):
        self.stream.sync()

    def wait(self, event):
        self.stream.wait(event.event)


class CudaEvent(DriverEvent):
    def __init__(self, device):
        core, _ = _core()
        self.event = device.create_event(core.EventOptions(timing_enabled=True))

    def record(self, stream):
        stream.stream.record(self.event)

    def synchronize(self):
        self.event.sync()

    def query(self):
        return self.event.is_done

    def elapsed_ms(self, start):
        return self.event - start.event


class CudaDriver(DeviceDriver):
    kind = "cuda"
    backend = "cuda"

    def __init__(self, ordinal):
        core, cu = _core()
        try:
            self.device = core.Device(ordinal)
            self.device.set_current()
        except Exception as e:
            raise _no_driver(e) from None
        self.ordinal = ordinal
        self.arch = f"sm_{self.device.arch}"
        self.name = self.device.name
        self._default = CudaStream(self.device.default_stream)
        self._cu = cu

    def info(self):
        import cuda.bindings
        import cuda.core

        from ..backends.cuda import nvrtc
        version = _check(self._cu.cuDriverGetVersion(), "cuDriverGetVersion")[0]
        props = self.device.properties
        (nv_major, nv_minor), _ = nvrtc.version()
        return {"name": self.name, "arch": self.arch, "driver": f"CUDA {version // 1000}.{version % 1000 // 10}",
                "sms": props.multiprocessor_count, "cuda.core": cuda.core.__version__,
                "cuda.bindings": cuda.bindings.__version__, "nvrtc": f"{nv_major}.{nv_minor}"}

    def alloc(self, nbytes, stream):
        return _BufferAllocation(self.device.memory_resource.allocate(max(int(nbytes), 1), stream=stream.stream))

    def owns(self, ptr, nbytes=1):
        return pointer_ordinal(ptr) == self.ordinal

    def copy_h2d(self, dst, src, stream):
        _check(self._cu.cuMemcpyHtoDAsync(dst, src.ctypes.data, src.nbytes, stream.cu), "a copy to the device")

    def copy_d2h(self, dst, src, stream):
        _check(self._cu.cuMemcpyDtoHAsync(dst.ctypes.data, src, dst.nbytes, stream.cu), "a copy from the device")

    def copy_d2d(self, dst, src, nbytes, stream):
        _check(self._cu.cuMemcpyDtoDAsync(dst, src, nbytes, stream.cu), "a device-to-device copy")

    def default_stream(self):
        return self._default

    def create_stream(self):
        return CudaStream(self.device.create_stream())

    def wrap_stream(self, handle):
        core, _ = _core()
        return CudaStream(core.Stream.from_handle(handle))

    def create_event(self):
        return CudaEvent(self.device)

    def load(self, exe):
        core, _ = _core()
        from ..backends.cuda.codegen import kernel_name
        kernel = core.ObjectCode.from_cubin(exe.binary).get_kernel(kernel_name(exe.fn))
        dynamic = exe.resources.get("dynamic_shared_bytes", 0)
        if dynamic:  # over 48 KB of shared memory: opt in, up to what this device allows a CTA
            optin = getattr(self.device.properties, "max_shared_memory_per_block_optin", None)
            if optin is not None and dynamic > optin:
                raise TileLaunchError(f"kernel '{exe.fn.name}' needs {dynamic} bytes of shared memory per block; "
                                      f"{self.name} allows {optin}: use smaller tile shapes")
            attr = self._cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _check(self._cu.cuKernelSetAttribute(attr, dynamic, kernel.handle, self._cu.CUdevice(self.ordinal)),
                   "opting into dynamic shared memory")
        return kernel

    def launch(self, loaded, grid, block, bufs, stream, prints=(), keep=(), shared=0):
        params = (ctypes.c_void_p * len(bufs))(*[b.ctypes.data for b in bufs])
        # cuLaunchKernel copies the parameter values before it returns, so `bufs` may go afterwards.
        _check(self._cu.cuLaunchKernel(loaded.handle, *grid, block, 1, 1, shared, stream.cu,
                                       ctypes.addressof(params), 0), "a kernel launch")

    def load_user(self, code_type, code, symbol):
        """A cuda.core Kernel of a Program's cubin or PTX (the driver JIT-compiles PTX as it loads)."""
        core, _ = _core()
        data = code.encode() if isinstance(code, str) else bytes(code)
        obj = core.ObjectCode.from_cubin(data) if code_type == "cubin" else core.ObjectCode.from_ptx(data)
        try:
            return obj.get_kernel(symbol)
        except Exception as e:
            raise TileLaunchError(f"the {code_type} has no kernel '{symbol}' ({e})") from None

    def launch_user(self, kernel, grid, block, shmem, bufs, stream):
        if shmem > 48 * 1024:  # beyond the default: opt in, as a CUDA program must
            attr = self._cu.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _check(self._cu.cuKernelSetAttribute(attr, shmem, kernel.handle, self._cu.CUdevice(self.ordinal)),
                   "opting into dynamic shared memory")
        params = (ctypes.c_void_p * max(len(bufs), 1))(*[b.ctypes.data for b in bufs])
        _check(self._cu.cuLaunchKernel(kernel.handle, *grid, *block, shmem, stream.cu,
                                       ctypes.addressof(params) if bufs else 0, 0), "a kernel launch")

    def synchronize(self):
        self.device.sync()


class _BufferAllocation:
    """A cuda.core Buffer; it frees itself (stream-ordered) when collected."""

    def __init__(self, buf):
        self.buffer = buf
        self.ptr = int(buf.handle)
