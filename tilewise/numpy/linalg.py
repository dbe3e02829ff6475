"""tilewise.numpy.linalg: numpy.linalg's names, on host data for now (visible fallbacks)."""
from ._submodule import attribute


def __getattr__(name):
    value = attribute("linalg", name)
    globals()[name] = value
    return value
