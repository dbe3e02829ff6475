"""Launching and compiling kernels on the available backends; CUDA devices, streams, events and
device arrays (on a GPU through cuda.core, or on the emulated device: see driver.py)."""
from .array import DeviceArray, empty, to_device
from .device_args import to_host
from .device import Device, Event, Stream, devices
from .launch import CompiledKernel, compile, launch

__all__ = ["CompiledKernel", "compile", "launch", "Device", "Stream", "Event", "devices", "DeviceArray", "empty",
           "to_device", "to_host"]
