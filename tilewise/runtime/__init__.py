"""Launching and compiling kernels on the available backends; CUDA devices, streams, events and
device arrays (on a GPU through cuda.core, or on the emulated device: see driver.py); and cuda.core's
Program -> ObjectCode -> Kernel -> launch for hand-written CUDA C++ (program.py)."""
from . import program as _program
from .array import DeviceArray, empty, to_device
from .device import Device, Event, Stream, devices
from .device_args import to_host
from .launch import CompiledKernel, compile
from .launch import launch as _tile_launch
from .program import (CompileError, Kernel, KernelArgumentError, LaunchConfig, ObjectCode, Program,
                      ProgramOptions)


def launch(stream, grid, kernel, *args):
    """Two forms, told apart by the second argument:

    - `launch(stream, grid, kernel, args)`: a @tw.kernel tile kernel, once per block of `grid` (1-3
      ints), on the tuple `args` (see tilewise.runtime.launch.launch);
    - `launch(stream, config, kernel, *args)`: cuda.core's form, a `LaunchConfig` and a Kernel from
      `ObjectCode.get_kernel`, with the kernel's arguments one by one (see program.launch)."""
    if isinstance(grid, LaunchConfig):
        return _program.launch(stream, grid, kernel, *args)
    if isinstance(kernel, Kernel):
        raise TypeError(f"a CUDA C++ Kernel ('{kernel.name}') is launched with a LaunchConfig: "
                        "launch(stream, LaunchConfig(grid=..., block=...), kernel, *args)")
    return _tile_launch(stream, grid, kernel, *args)


__all__ = ["CompiledKernel", "compile", "launch", "Device", "Stream", "Event", "devices", "DeviceArray", "empty",
           "to_device", "to_host", "Program", "ProgramOptions", "ObjectCode", "Kernel", "LaunchConfig",
           "CompileError", "KernelArgumentError"]
