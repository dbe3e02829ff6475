"""Kernels in a module with `from __future__ import annotations`: Constant annotations are strings
there, and must still specialise and be checked like the evaluated ones."""
from __future__ import annotations

import numpy as np
import pytest

import tilewise as tw


@tw.kernel
def fill(a, T: tw.Constant[int], value: float):
    tw.store(a, (0,), tw.full((T,), value, tw.float32))


def test_string_constant_annotation_specialises(backend, rng):
    a = rng.standard_normal(6).astype(np.float32)
    tw.launch(None, 1, fill, (a, 4, 2.5))
    assert (a[:4] == 2.5).all()


def test_string_constant_annotation_is_checked_at_launch(backend, rng):
    a = rng.standard_normal(6).astype(np.float32)
    before = a.copy()
    with pytest.raises(tw.TileLaunchError, match=r"Constant\[int\] parameter 'T' got float"):
        tw.launch(None, 1, fill, (a, 4.0, 2.5))
    np.testing.assert_array_equal(a, before)
