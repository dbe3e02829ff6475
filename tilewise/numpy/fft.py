"""tilewise.numpy.fft: numpy.fft's names, on host data for now (visible fallbacks)."""
from ._submodule import attribute


def __getattr__(name):
    value = attribute("fft", name)
    globals()[name] = value
    return value
