"""Control flow: runtime for/while/if with carried values, divergence between blocks (each block must
compute what it would alone), helpers, early return, constant/runtime conditions, grids, array lists."""
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw


@tw.kernel
def range_sum(out, lo, hi, step):
    b = tw.bid(0)
    s = 0                      # a Python number that becomes a loop-carried int32
    n = 0
    for i in range(lo + b, hi, step):
        s += i * i
        n = n + 1
    tw.store(out, (b, 0), s)
    tw.store(out, (b, 1), n)


@pytest.mark.parametrize("lo,hi,step", [(0, 10, 1), (3, 20, 4), (10, 0, -1), (7, -8, -3), (5, 5, 1), (9, 2, 2),
                                        (-4, 4, 3), (0, 5, 0)])
def test_for_dynamic_bounds(backend, lo, hi, step):
    nb = 6
    out = np.full((nb, 2), -1, np.int32)
    tw.launch(None, (nb,), range_sum, (out, lo, hi, step))
    trips = [range(lo + b, hi, step) if step else range(0) for b in range(nb)]  # a zero step runs nothing
    want = [[sum(i * i for i in r), len(r)] for r in trips]
    np.testing.assert_array_equal(out, want)


@tw.kernel
def divergent_loops(a, out, T: tw.Constant[int]):
    b = tw.bid(0)
    x = tw.load(a, b, shape=T)
    acc = tw.zeros((T,), tw.float32)
    for i in range(b):                          # trip count differs per block
        for j in range(i, 2 * i + 1):           # inner bounds depend on the outer variable
            acc = acc + x * (j % 3)
    k = 0
    v = b * 7 + 1
    while v != 1 and k < 100:                   # Collatz: a different trip count per block
        v = tw.where(v % 2 == 0, v // 2, 3 * v + 1)
        k += 1
    tw.store(out, b, acc + k)


def test_nested_and_while_loops_diverge(backend, rng):
    nb, t = 7, 4
    a = random_array(rng, nb * t, np.float32)
    out = np.zeros(nb * t, np.float32)
    tw.launch(None, (nb,), divergent_loops, (a, out, t))
    for b in range(nb):
        x = a[b * t:(b + 1) * t].astype(np.float64)
        acc = sum((j % 3) * x for i in range(b) for j in range(i, 2 * i + 1)) if b else np.zeros(t)
        v, k = b * 7 + 1, 0
        while v != 1 and k < 100:
            v, k = (v // 2 if v % 2 == 0 else 3 * v + 1), k + 1
        np.testing.assert_allclose(out[b * t:(b + 1) * t], acc + k, rtol=1e-5, atol=1e-4, err_msg=f"block {b}")


def classify(v, limit):
    if v < 0:
        r = -1
    elif v == 0:
        r = 0
    elif v < limit:
        r = v * 2
    else:
        r = limit
    return r


@tw.kernel
def if_chain(a, out, limit, flag, scale):
    b = tw.bid(0)
    v = tw.load(a, b, shape=1).item()
    r = classify(v, limit)                       # helper, inlined; branches diverge across blocks
    if flag and v > 2:                           # runtime bool argument mixed with a runtime comparison
        r = r + 1000
    elif not flag or v == -1:
        r = r - 1000
    f = 0.0                                      # float carried through the if from a Python number
    if r % 2 == 0:
        f = scale * r
    tw.store(out, (b, 0), r)
    tw.store(out, (b, 1), f.astype(tw.int32))


@pytest.mark.parametrize("flag", [True, False])
def test_if_elif_else_diverges(backend, rng, flag):
    a = rng.integers(-3, 9, 40).astype(np.int32)
    a[:4] = [0, -1, 5, 8]
    out = np.zeros((40, 2), np.int32)
    tw.launch(None, (40,), if_chain, (a, out, 6, flag, 1.5))
    for b, v in enumerate(a.tolist()):
        r = classify(v, 6)
        if flag and v > 2:
            r += 1000
        elif not flag or v == -1:
            r -= 1000
        f = 1.5 * r if r % 2 == 0 else 0.0
        assert out[b].tolist() == [r, int(f)], (b, v)


@tw.kernel
def early_return(a, out, T: tw.Constant[int]):
    b = tw.bid(0)
    x = tw.load(a, b, shape=T)
    if tw.sum(x) < 0:
        tw.store(out, b, x * 0 - 1)
        return
    y = x * 2
    if b == 3:
        return
    tw.store(out, b, y)


def test_early_return(backend, rng):
    nb, t = 9, 5
    a = random_array(rng, nb * t, np.float32)
    out = np.full(nb * t, 99.0, np.float32)
    tw.launch(None, (nb,), early_return, (a, out, t))
    for b in range(nb):
        x = a[b * t:(b + 1) * t]
        want = -np.ones(t) if x.astype(np.float64).sum() < 0 else np.full(t, 99.0) if b == 3 else x * 2
        np.testing.assert_array_equal(out[b * t:(b + 1) * t], want.astype(np.float32), err_msg=f"block {b}")


@tw.kernel
def const_and_runtime(out, USE: tw.Constant[bool], LIMIT: tw.Constant[int], n):
    b = tw.bid(0)
    r = 0
    if USE and b < n:            # Constant and runtime: folds to `b < n` or to False
        r = 1
    if not USE or b % 2 == 0:    # folds to True or to `b % 2 == 0`
        r = r + 10
    if USE or b > 1000:
        r = r + 100
    if LIMIT > 3 and (b >= LIMIT or not b < n):
        r = r + 1000
    tw.store(out, b, r)


@pytest.mark.parametrize("use,limit", [(True, 5), (False, 5), (True, 2), (False, 0)])
def test_constant_and_runtime_conditions(backend, use, limit):
    nb, n = 12, 7
    out = np.zeros(nb, np.int32)
    tw.launch(None, (nb,), const_and_runtime, (out, use, limit, n))
    want = []
    for b in range(nb):
        r = int(use and b < n)
        r += 10 if (not use or b % 2 == 0) else 0
        r += 100 if (use or b > 1000) else 0
        r += 1000 if (limit > 3 and (b >= limit or not b < n)) else 0
        want.append(r)
    np.testing.assert_array_equal(out, want)


@tw.kernel
def scalar_args(out, i, f, flag, big):
    assert i.dtype is tw.int32 and f.dtype is tw.float32 and flag.dtype is tw.bool_ and big.dtype is tw.int64
    v = tw.where(flag, f * i, f - i)
    tw.store(out, 0, v)
    tw.store(out, 1, (big // 2**33).astype(tw.float32))


@pytest.mark.parametrize("flag", [True, False])
def test_runtime_scalar_arguments(backend, flag):
    out = np.zeros(2, np.float32)
    tw.launch(None, (1,), scalar_args, (out, 7, 2.5, flag, 2**40))
    np.testing.assert_array_equal(out, [2.5 * 7 if flag else 2.5 - 7, 2**7])


@tw.kernel
def grid_ids(out):
    b0, b1, b2 = tw.bid(0), tw.bid(1), tw.bid(2)
    n0, n1, n2 = tw.num_blocks(0), tw.num_blocks(1), tw.num_blocks(2)
    lin = b0 + n0 * (b1 + n1 * b2)
    tw.store(out, (lin, 0), b0)
    tw.store(out, (lin, 1), b1)
    tw.store(out, (lin, 2), b2)
    tw.store(out, (lin, 3), n0 * 100 + n1 * 10 + n2)


@pytest.mark.parametrize("grid", [(5,), (3, 4), (2, 3, 4), (1, 1, 3)])
def test_grids(backend, grid):
    g = tuple(grid) + (1,) * (3 - len(grid))
    total = int(np.prod(g))
    out = np.full((total, 4), -1, np.int32)
    tw.launch(None, grid, grid_ids, (out,))
    z, y, x = np.meshgrid(range(g[2]), range(g[1]), range(g[0]), indexing="ij")
    want = np.stack([x.ravel(), y.ravel(), z.ravel(), np.full(total, g[0] * 100 + g[1] * 10 + g[2])], axis=1)
    np.testing.assert_array_equal(out, want)


@tw.kernel
def grouped_scale(As, Bs, T: tw.Constant[int]):
    b = tw.bid(0)
    for g in range(len(As)):           # constant range: unrolled, so As[g] is a compile-time pick
        x = tw.load(As[g], b, shape=T)
        tw.store(Bs[g], b, x * (g + 1) + As[g].shape[0])


def test_list_of_arrays(backend, rng):
    sizes = [5, 12, 1]
    As = [random_array(rng, n, np.float32) for n in sizes]
    Bs = [np.zeros(n, np.float32) for n in sizes]
    tw.launch(None, (3,), grouped_scale, (As, tuple(Bs), 4))
    for g, (a, b) in enumerate(zip(As, Bs)):
        np.testing.assert_allclose(b, a * (g + 1) + a.shape[0], rtol=1e-6)


def loop_helper(x, n):
    acc = x * 0
    for i in range(n):
        acc = acc + helper_term(x, i)
    return acc


def helper_term(x, i):
    if i % 2 == 0:
        return x
    return -x * 0.5


@tw.kernel
def helper_loops(a, out, n, T: tw.Constant[int]):
    b = tw.bid(0)
    tw.store(out, b, loop_helper(tw.load(a, b, shape=T), n + b))


def test_helpers_with_loops_and_returns(backend, rng):
    a = random_array(rng, 12, np.float32)
    out = np.zeros(12, np.float32)
    tw.launch(None, (3,), helper_loops, (a, out, 2, 4))
    for b in range(3):
        n = 2 + b
        coef = sum(1.0 if i % 2 == 0 else -0.5 for i in range(n))
        np.testing.assert_allclose(out[b * 4:(b + 1) * 4], a[b * 4:(b + 1) * 4] * coef, rtol=1e-6)


@tw.kernel
def loop_type_change(out, n):
    acc = 0
    for i in range(n):
        acc = acc + tw.full((3,), 0.5, tw.float32) * i   # 0 becomes a float32 tile: the loop is retraced
    tw.store(out, 0, acc)


def test_loop_carried_from_python_number(backend):
    out = np.zeros(3, np.float32)
    tw.launch(None, (1,), loop_type_change, (out, 5))
    np.testing.assert_array_equal(out, np.full(3, 0.5 * sum(range(5))))


def test_loop_carried_type_mismatch_is_an_error(backend):
    @tw.kernel
    def bad(out, n):
        acc = tw.zeros((3,), tw.float32)
        for _ in range(n):
            acc = tw.zeros((4,), tw.float32)
        tw.store(out, 0, acc)

    with pytest.raises(tw.TileTypeError, match="acc") as e:
        tw.launch(None, (1,), bad, (np.zeros(4, np.float32), 2))
    assert e.value.loc[0] == __file__


def test_break_is_a_syntax_error(backend):
    @tw.kernel
    def bad(out, n):
        for i in range(n):
            break

    with pytest.raises(tw.TileSyntaxError, match="break") as e:
        tw.launch(None, (1,), bad, (np.zeros(4, np.float32), 2))
    assert e.value.loc[0] == __file__
