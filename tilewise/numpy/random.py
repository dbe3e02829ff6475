"""tilewise.numpy.random: numpy.random's names and Generators, drawing on the host for now (visible
fallbacks): every array they return is a tilewise.numpy array."""
import numpy as np

from . import fallback
from ._submodule import attribute


class Generator:
    """numpy.random.Generator whose draws come back as tilewise.numpy arrays."""

    def __init__(self, generator):
        self._generator = generator

    def __getattr__(self, name):
        method = getattr(self._generator, name)
        return fallback.wrapper(f"random.Generator.{name}", method) if callable(method) else method

    def __repr__(self):
        return f"tilewise.numpy.random.Generator({self._generator.bit_generator!r})"


def default_rng(seed=None):
    return Generator(np.random.default_rng(seed))


def __getattr__(name):
    value = attribute("random", name)
    globals()[name] = value
    return value
