"""Property tests (hypothesis): random array shapes, tile shapes, strides and op chains against NumPy."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilewise as tw

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@tw.kernel
def copy_nd(a, b, T0: tw.Constant[int], T1: tw.Constant[int]):
    i, j = tw.bid(0), tw.bid(1)
    tw.store(b, (i, j), tw.load(a, (i, j), shape=(T0, T1)))


@tw.kernel
def copy_t(a, b, T0: tw.Constant[int], T1: tw.Constant[int]):
    """b = a.T through an order=(1, 0) load."""
    i, j = tw.bid(0), tw.bid(1)
    tw.store(b, (i, j), tw.load(a, (i, j), shape=(T0, T1), order=(1, 0)))


dims = st.integers(1, 23)
tiles = st.integers(1, 9)


@SETTINGS
@given(m=dims, n=dims, t0=tiles, t1=tiles, step0=st.sampled_from([1, 2, -1]), step1=st.sampled_from([1, 3]),
       data=st.data())
def test_load_store_round_trip(backend, m, n, t0, t1, step0, step1, data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((m * abs(step0), n * step1)).astype(np.float32)
    a = base[::step0, ::step1]
    assert a.shape == (m, n)
    out = np.full((m + 2, n + 2), -7.0, np.float32)
    b = out[1:m + 1, 1:n + 1]
    tw.launch(None, (tw.cdiv(m, t0), tw.cdiv(n, t1)), copy_nd, (a, b, t0, t1))
    np.testing.assert_array_equal(b, a)
    border = np.ones(out.shape, bool)
    border[1:m + 1, 1:n + 1] = False
    assert (out[border] == -7.0).all()


@SETTINGS
@given(m=dims, n=dims, t0=tiles, t1=tiles, seed=st.integers(0, 2**32 - 1))
def test_transposing_load(backend, m, n, t0, t1, seed):
    a = np.random.default_rng(seed).integers(-50, 50, (m, n)).astype(np.int32)
    b = np.zeros((n, m), np.int32)
    tw.launch(None, (tw.cdiv(n, t0), tw.cdiv(m, t1)), copy_t, (a, b, t0, t1))
    np.testing.assert_array_equal(b, a.T)


OPS = ["add", "sub", "mul", "max", "min", "neg", "abs", "square", "where_pos", "scale"]


def step(op, x, y):
    if op == "add":
        return x + y
    elif op == "sub":
        return x - y
    elif op == "mul":
        return x * y
    elif op == "max":
        return tw.maximum(x, y)
    elif op == "min":
        return min(x, y)
    elif op == "neg":
        return -x
    elif op == "abs":
        return abs(x)
    elif op == "square":
        return x * x
    elif op == "where_pos":
        return tw.where(x > 0, x, y)
    return x * 0.5 + 1


def np_step(op, x, y):
    return {"add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "max": lambda: np.maximum(x, y),
            "min": lambda: np.minimum(x, y), "neg": lambda: -x, "abs": lambda: np.abs(x), "square": lambda: x * x,
            "where_pos": lambda: np.where(x > 0, x, y), "scale": lambda: x * 0.5 + 1}[op]()


def chain(ops, x, y):
    for k in range(len(ops)):        # constant range over a tuple: unrolled
        x = step(ops[k], x, y)
    return x


@tw.kernel
def chain_k(a, b, c, OPS: tw.Constant[tuple], T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(c, i, chain(OPS, tw.load(a, i, shape=T), tw.load(b, i, shape=T)))


@SETTINGS
@given(ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=6), n=st.integers(1, 40), t=st.integers(1, 16),
       dt=st.sampled_from(["float64", "int32", "int64"]), seed=st.integers(0, 2**32 - 1))
def test_elementwise_chains(backend, ops, n, t, dt, seed):
    rng = np.random.default_rng(seed)
    if dt == "float64":
        a, b = rng.standard_normal(n), rng.standard_normal(n)
    else:
        a, b = rng.integers(-20, 20, n).astype(dt), rng.integers(-20, 20, n).astype(dt)
    if dt != "float64" and "scale" in ops:
        ops = [o for o in ops if o != "scale"] or ["add"]  # * 0.5 would make it a float chain
    c = np.zeros(n, dt)
    tw.launch(None, (tw.cdiv(n, t),), chain_k, (a, b, c, tuple(ops), t))
    want = a
    with np.errstate(over="ignore"):
        for op in ops:
            want = np_step(op, want, b).astype(dt)
    if dt == "float64":
        np.testing.assert_allclose(c, want, rtol=1e-12, atol=1e-12)
    else:
        np.testing.assert_array_equal(c, want)


@tw.kernel
def reduce_rows(a, out, TM: tw.Constant[int], TN: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, (i, 0), shape=(TM, TN), padding_mode=tw.PaddingMode.NEG_INF)
    tw.store(out, (i, 0), tw.max(x, axis=1, keepdims=True))


@SETTINGS
@given(m=dims, n=st.integers(1, 16), tm=tiles, extra=st.integers(0, 5), seed=st.integers(0, 2**32 - 1))
def test_row_max_with_padding(backend, m, n, tm, extra, seed):
    """A row tile wider than the array: NEG_INF padding keeps the max exact."""
    a = np.random.default_rng(seed).standard_normal((m, n)).astype(np.float32) - 10
    out = np.zeros((m, 1), np.float32)
    tw.launch(None, (tw.cdiv(m, tm),), reduce_rows, (a, out, tm, n + extra))
    np.testing.assert_array_equal(out[:, 0], a.max(axis=1))


@pytest.mark.parametrize("dt", ["int8", "uint16"])
@SETTINGS
@given(x=st.lists(st.integers(-300, 300), min_size=1, max_size=20), y=st.integers(-300, 300))
def test_int_floor_division_matches_python(backend, dt, x, y):
    info = np.iinfo(dt)
    xs = np.array([v % (info.max + 1 - info.min) + info.min for v in x], dtype=np.int64).astype(dt)
    yv = y % (info.max + 1 - info.min) + info.min

    @tw.kernel
    def divmod_k(a, q, r, d, T: tw.Constant[int]):
        x = tw.load(a, 0, shape=T)
        dd = tw.full((T,), d, a.dtype)
        tw.store(q, 0, x // dd)
        tw.store(r, 0, x % dd)

    q, r = np.zeros_like(xs), np.zeros_like(xs)
    tw.launch(None, (1,), divmod_k, (xs, q, r, yv, 32))
    for k, v in enumerate(xs.tolist()):
        wq = 0 if yv == 0 else v // yv
        wr = 0 if yv == 0 else v % yv
        wq = (wq - info.min) % (info.max + 1 - info.min) + info.min  # INT_MIN // -1 wraps
        assert (int(q[k]), int(r[k])) == (wq, wr), (v, yv)
