"""Smaller cuTile API points the samples lean on: side-effecting while conditions, static_iter,
static_assert / ensure_constant / assume_divisible_by, kernel.replace_hints, and the clear refusal of
Blackwell-only mma_scaled."""
import numpy as np
import pytest

import tilewise as ct

ConstInt = ct.Constant[int]


@ct.kernel
def count_until(Counter, LIMIT: ConstInt):
    # The condition's atomic must run once per test of the condition, never once more outside the loop.
    while ct.atomic_add(Counter, 0, 1) < LIMIT:
        pass


def test_while_condition_runs_once_per_iteration(backend):
    counter = np.zeros(1, np.int32)
    ct.launch(None, (1,), count_until, (counter, 5))
    assert counter[0] == 6  # old values 0..4 continue, 5 stops


@ct.kernel
def spin_then_count(Locks, Hits):
    while ct.atomic_cas(Locks, 0, 0, 1, memory_order=ct.MemoryOrder.ACQUIRE) == 1:
        pass
    h = ct.load(Hits, index=(0,), shape=(1,))
    ct.store(Hits, index=(0,), tile=h + 1)
    ct.atomic_xchg(Locks, 0, 0, memory_order=ct.MemoryOrder.RELEASE)


def test_spin_lock_many_blocks(backend):
    locks, hits = np.zeros(1, np.int32), np.zeros(1, np.int64)
    ct.launch(None, (37,), spin_then_count, (locks, hits))
    assert hits[0] == 37 and locks[0] == 0


@ct.kernel
def weighted_columns(X, Y, TILE: ConstInt):
    ct.static_assert(TILE % 2 == 0, "TILE must be even")
    t = ct.ensure_constant(TILE)
    acc = ct.zeros((t,), dtype=ct.float32)
    for i, w in ct.static_iter(enumerate((1.0, -2.0, 0.5))):
        acc += w * ct.load(X, index=(i, ct.bid(0)), shape=(1, t)).reshape((t,))
    n = ct.assume_divisible_by(ct.bid(0) * TILE, TILE)
    ct.scatter(Y, n + ct.arange(TILE, dtype=ct.int32), acc)


def test_static_iter_and_static_helpers(backend, rng):
    x = rng.standard_normal((3, 40)).astype(np.float32)
    y = np.empty(40, np.float32)
    ct.launch(None, (ct.cdiv(40, 8),), weighted_columns.replace_hints(occupancy=4), (x, y, 8))
    np.testing.assert_allclose(y, x[0] - 2 * x[1] + 0.5 * x[2], rtol=1e-6, atol=1e-6)


def test_static_assert_failure_names_the_line(backend):
    x, y = np.zeros((3, 9), np.float32), np.zeros(9, np.float32)
    with pytest.raises(ct.TileValueError, match="TILE must be even") as e:
        ct.launch(None, (1,), weighted_columns, (x, y, 3))
    assert "test_cutile_api.py" in str(e.value)


@ct.kernel
def uses_mma_scaled(A, S, C):
    a = ct.load(A, index=(0, 0), shape=(16, 16))
    s = ct.load(S, index=(0, 0), shape=(16, 1))
    ct.store(C, index=(0, 0), tile=ct.mma_scaled(a, s, a, s, ct.zeros((16, 16), dtype=ct.float32)))


def test_mma_scaled_is_unsupported(backend):
    a, s, c = np.zeros((16, 16), np.float32), np.ones((16, 1), np.float32), np.zeros((16, 16), np.float32)
    with pytest.raises(ct.TileUnsupportedError, match="Blackwell") as e:
        ct.launch(None, (1,), uses_mma_scaled, (a, s, c))
    assert "test_cutile_api.py" in str(e.value)


def test_replace_hints_keeps_the_kernel():
    k = weighted_columns.replace_hints(num_ctas=2)
    assert k.hints == {"num_ctas": 2} and k.fn is weighted_columns.fn
    assert weighted_columns.hints == {}
