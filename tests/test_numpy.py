"""tilewise.numpy against NumPy: results, dtypes and errors, over dtypes and edge shapes (0-d, empty, one
element, non-power-of-two, strided, reversed and broadcast views). The `mode` fixture runs each test with
every operation as a generated tile kernel ("kernel": the small-array threshold set to 0) and with the
threshold as shipped ("as shipped"), where small arrays run through NumPy."""
import pickle
import warnings

import numpy as np
import pytest
from conftest import random_array

import tilewise.numpy as tnp
from tilewise.numpy import expr, kernels

FLOATS = [np.float16, np.float32, np.float64]
INTS = [np.int8, np.uint8, np.int32, np.int64, np.uint64]
DTYPES = [np.bool_, *INTS, *FLOATS]
SHAPES = [(), (0,), (1,), (37,), (5000,), (3, 0), (17, 29), (4, 5, 6), (2, 3, 4, 5)]


@pytest.fixture(params=["kernel", "as shipped"])
def mode(request, monkeypatch):
    if request.param == "kernel":
        monkeypatch.setattr(expr, "SMALL", 0)
    return request.param


def tol(dt):
    return {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-12}.get(np.dtype(dt).type, 0)


def check(got, want, rtol=None):
    """Same type family, shape and dtype as NumPy's result, and equal values (NaN where NumPy has NaN)."""
    assert isinstance(got, tnp.ndarray), type(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    assert got.dtype == np.asarray(want).dtype, (got.dtype, np.asarray(want).dtype)
    g, w = np.asarray(got), np.asarray(want)
    if w.dtype.kind == "f":
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol or tol(w.dtype),
                                   atol=rtol or tol(w.dtype), equal_nan=True)
    else:
        np.testing.assert_array_equal(g, w)


def views(rng, shape, dtype):
    """(name, NumPy array) pairs of one shape: contiguous, and where the shape allows, strided and reversed."""
    base = random_array(rng, shape, dtype)
    out = [("contiguous", base)]
    if len(shape) >= 1 and shape[-1] > 1:
        wide = random_array(rng, (*shape[:-1], 2 * shape[-1]), dtype)
        out.append(("strided", wide[..., ::2]))
        out.append(("reversed", base[..., ::-1]))
    if len(shape) >= 2:
        out.append(("transposed", random_array(rng, shape[::-1], dtype).T))
    return out


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "true_divide", "floor_divide", "remainder",
                                  "maximum", "minimum", "less", "equal", "bitwise_and", "power"])
def test_binary_ufuncs(mode, rng, name, shape):
    uf = getattr(np, name)
    for dt in (np.int32, np.float32, np.uint8, np.float64):
        if name == "bitwise_and" and np.dtype(dt).kind == "f":
            continue
        for (_, x), (_, y) in zip(views(rng, shape, dt), views(rng, shape, dt)):
            if name == "power" and np.dtype(dt).kind in "iu":
                y = np.abs(y) % 5
            with np.errstate(all="ignore"):
                want = uf(x, y)
                got = getattr(tnp, name)(tnp.asarray(x), tnp.asarray(y))
                check(got, want)


@pytest.mark.parametrize("dt", DTYPES, ids=lambda d: np.dtype(d).name)
def test_mixed_dtypes_promote_as_numpy(mode, rng, dt):
    x = random_array(rng, (3001,), dt)
    for other in DTYPES:
        y = random_array(rng, (3001,), other)
        with np.errstate(all="ignore"):
            if dt == np.bool_ and other == np.bool_:
                check(tnp.asarray(x) & tnp.asarray(y), x & y)
                continue
            check(tnp.asarray(x) + tnp.asarray(y), x + y)
            check(tnp.asarray(x) < tnp.asarray(y), x < y)


@pytest.mark.parametrize("scalar", [3, -2, 2.5, True, np.float32(1.5), np.int16(-7), 1e300])
@pytest.mark.parametrize("dt", [np.uint8, np.int16, np.float16, np.float32, np.int64], ids=lambda d: np.dtype(d).name)
def test_python_and_numpy_scalars_follow_nep50(mode, rng, dt, scalar):
    x = random_array(rng, (40, 50), dt)
    try:
        with np.errstate(all="ignore"):
            want = x * scalar
    except OverflowError as e:
        with pytest.raises(OverflowError, match=str(e)):
            tnp.asarray(x) * scalar
        return
    with np.errstate(all="ignore"):
        check(tnp.asarray(x) * scalar, want)
        check(scalar - tnp.asarray(x), scalar - x)


def test_integer_semantics(mode):
    a = np.array([7, -7, 7, -7, 5, 0, np.iinfo(np.int32).min], np.int32)
    b = np.array([2, 2, -2, -2, 0, 0, -1], np.int32)
    with np.errstate(all="ignore"):
        for name in ("floor_divide", "remainder", "add", "multiply"):
            check(getattr(tnp, name)(tnp.asarray(a), tnp.asarray(b)), getattr(np, name)(a, b))
    big = np.array([200, 100, 255], np.uint8)
    check(tnp.asarray(big) + tnp.asarray(big), big + big)  # wraps


@pytest.mark.parametrize("name", ["negative", "absolute", "sqrt", "exp", "log", "sin", "cos", "tanh", "floor",
                                  "ceil", "isnan", "isinf", "isfinite", "sign", "square", "logical_not",
                                  "log1p", "expm1", "arctan", "trunc", "rint"])
@pytest.mark.parametrize("dt", [np.float32, np.float64, np.int32, np.float16], ids=lambda d: np.dtype(d).name)
def test_unary_ufuncs(mode, rng, name, dt):
    x = random_array(rng, (1999,), dt)
    if np.dtype(dt).kind == "f":
        x[:4] = [np.nan, np.inf, -np.inf, -0.0]
    with np.errstate(all="ignore"):
        want = getattr(np, name)(x)
        got = getattr(tnp, name)(tnp.asarray(x))
    # transcendental functions: a few ulp (docs/numpy.md)
    check(got, want, rtol=8 * tol(want.dtype) if want.dtype.kind == "f" else None)


@pytest.mark.parametrize("shape", [(), (1,), (5000,), (4, 0), (33, 17), (3, 4, 5), (2, 3, 5, 7)], ids=str)
@pytest.mark.parametrize("op", ["sum", "prod", "max", "min", "any", "all", "mean"])
def test_reductions(mode, rng, op, shape):
    for dt in (np.float32, np.float64, np.int8, np.int64, np.bool_):
        if op == "prod" and dt != np.float64 or op in ("max", "min") and 0 in shape:
            continue
        for _, x in views(rng, shape, dt):
            axes = [None, *range(len(shape)), *([(0, len(shape) - 1)] if len(shape) > 1 else []), -1]
            for axis in axes if shape else [None]:
                for keepdims in (False, True):
                    with np.errstate(all="ignore"):
                        want = getattr(np, op)(x, axis=axis, keepdims=keepdims)
                        got = getattr(tnp, op)(tnp.asarray(x), axis=axis, keepdims=keepdims)
                    check(got, np.asarray(want), rtol=1e-4 if np.asarray(want).dtype == np.float32 else 1e-9)


def test_reductions_of_fused_expressions(mode, rng):
    a, b = random_array(rng, (100_003,), np.float32), random_array(rng, (100_003,), np.float32)
    x, y = tnp.asarray(a), tnp.asarray(b)
    s = tnp.sum(x * x + y)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert abs(float(s) - float((a64 * a64 + b64).sum())) < 1e-4 * float(np.abs(a64 * a64 + b64).sum())
    check(tnp.max(tnp.exp(x) - y), np.max(np.exp(a) - b), rtol=1e-6)
    m = random_array(rng, (123, 457), np.float64)
    t = tnp.asarray(m)
    check((t - t.mean(axis=0)).std(axis=1, ddof=1), (m - m.mean(axis=0)).std(axis=1, ddof=1))
    check(t.var(), m.var())
    check(tnp.sum(t > 0, axis=0), np.sum(m > 0, axis=0))
    check(tnp.sum(m.astype(np.int8), dtype=np.int8), np.sum(m.astype(np.int8), dtype=np.int8))


def test_reductions_propagate_nan_and_refuse_empty(mode):
    x = np.arange(50000, dtype=np.float64)
    x[777] = np.nan
    assert np.isnan(float(tnp.max(tnp.asarray(x))))
    assert np.isnan(float(tnp.min(tnp.asarray(x) * 2)))
    with pytest.raises(ValueError, match="zero-size array to reduction operation maximum"):
        tnp.max(tnp.zeros((3, 0)), axis=1)
    check(tnp.sum(tnp.zeros((3, 0)), axis=1), np.zeros(3))


def test_a_new_size_reuses_the_kernel(monkeypatch, rng):
    monkeypatch.setattr(expr, "SMALL", 0)
    a = tnp.asarray(random_array(rng, (1000,), np.float32))
    np.asarray(tnp.sin(a) * 3.0 + a)
    before = len(kernels._KERNELS)
    for n in (1, 77, 4096, 100_000):
        x = random_array(rng, (n,), np.float32)
        check(tnp.sin(tnp.asarray(x)) * 7.5 + tnp.asarray(x), np.sin(x) * np.float32(7.5) + x, rtol=1e-6)
    assert len(kernels._KERNELS) == before  # new lengths and a new scalar value: no new kernel


def test_where_clip_isclose(mode, rng):
    x, y = random_array(rng, (3, 1000), np.float32), random_array(rng, (1000,), np.float64)
    check(tnp.where(tnp.asarray(x) > 0, tnp.asarray(x), tnp.asarray(y)), np.where(x > 0, x, y))
    check(tnp.where(tnp.asarray(x) > 0, tnp.asarray(x), 0.5), np.where(x > 0, x, 0.5))
    check(tnp.clip(tnp.asarray(x), -1, 1.5), np.clip(x, -1, 1.5))
    check(tnp.isclose(tnp.asarray(x), tnp.asarray(x) + 1e-7), np.isclose(x, x + np.float32(1e-7)))
    assert tnp.allclose(tnp.asarray(x), x) and not tnp.allclose(tnp.asarray(x), x + 1)


def test_views_share_memory_and_writes_are_seen(mode, rng):
    base = random_array(rng, (6, 8), np.float64)
    t = tnp.asarray(base.copy())
    v = t[1:-1, ::2]
    v[...] = 5.0
    want = base.copy()
    want[1:-1, ::2] = 5.0
    check(t, want)
    t[1:-1, 1:-1] = t[1:-1, 1:-1] * 2 + 1
    want[1:-1, 1:-1] = want[1:-1, 1:-1] * 2 + 1
    check(t, want)
    check(t[::-1], want[::-1])
    check(t.T, want.T)
    check(t[2], want[2])
    check(t[want > 0], want[want > 0])
    t[2, 3] = -7
    want[2, 3] = -7
    check(t, want)
    assert t[2, 3].item() == -7 and float(t[-1, -1]) == want[-1, -1]
    t[t > 3] = 0
    want[want > 3] = 0
    check(t, want)


def test_pending_values_are_computed_before_a_write(mode, rng):
    x = random_array(rng, (5000,), np.float32)
    t = tnp.asarray(x.copy())
    doubled = t * 2
    t[...] = 0
    t[10:20] += 1
    check(doubled, x * 2)
    want = np.zeros_like(x)
    want[10:20] += 1
    check(t, want)


def test_in_place_operations_on_overlapping_views_match_numpy(mode, rng):
    x = random_array(rng, (4000,), np.int64)
    t, n = tnp.asarray(x.copy()), x.copy()
    t[1:] += t[:-1]
    n[1:] += n[:-1]
    check(t, n)
    t *= 3
    n *= 3
    check(t, n)
    with pytest.raises(TypeError, match="Cannot cast ufunc 'add' output"):
        t += 0.5


def test_errors_are_numpys(mode):
    with pytest.raises(ValueError, match=r"operands could not be broadcast together with shapes \(2,3\) \(4,\)"):
        tnp.ones((2, 3)) + tnp.ones(4)
    with pytest.raises(np.exceptions.AxisError):
        tnp.sum(tnp.ones((2, 3)), axis=2)
    with pytest.raises(TypeError):
        tnp.bitwise_and(tnp.ones(3), tnp.ones(3))
    with pytest.raises(OverflowError, match="out of bounds for uint8"):
        tnp.zeros(3, np.uint8) + 300
    with pytest.raises(IndexError):
        tnp.arange(3)[5]


def test_protocols_return_our_arrays(mode, rng):
    x = random_array(rng, (300,), np.float64)
    t = tnp.asarray(x)
    r = np.sin(t)
    assert isinstance(r, tnp.ndarray)
    check(r, np.sin(x))
    check(np.add.reduce(t), np.add.reduce(x))
    assert isinstance(np.asarray(t), np.ndarray) and np.shares_memory(np.asarray(t), x)
    assert t.__array_namespace__() is tnp
    assert isinstance(pickle.loads(pickle.dumps(t * 2)), tnp.ndarray)
    check(pickle.loads(pickle.dumps(t * 2)), x * 2)
    assert float(tnp.sum(t)) == pytest.approx(x.sum())
    assert int(tnp.asarray(np.int64(7))) == 7 and bool(tnp.asarray(True)) and len(t) == 300
    assert [float(v) for v in tnp.asarray(x[:3])] == list(x[:3])
    assert t[:3].tolist() == x[:3].tolist() and tnp.asarray(x)[4].item() == x[4]
    assert repr(tnp.arange(3)) == "array([0, 1, 2])"


def test_fallbacks_are_visible(monkeypatch):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = np.sort(tnp.asarray([3, 1, 2]))
        r2 = tnp.sort(tnp.asarray([3, 1, 2]))
    assert isinstance(r, tnp.ndarray) and isinstance(r2, tnp.ndarray)
    check(r, np.array([1, 2, 3]))
    messages = [w for w in caught if issubclass(w.category, tnp.FallbackWarning)]
    assert messages and "sort" in str(messages[0].message)
    assert messages[0].filename == __file__
    entry = tnp.fallbacks()["sort"]
    assert entry["calls"] >= 2 and any(line.startswith(__file__) for line in entry["lines"])
    monkeypatch.setenv("TILEWISE_NUMPY_FALLBACK", "error")
    with pytest.raises(NotImplementedError, match="sort"):
        tnp.sort(tnp.arange(3))
    assert "sum" in tnp.native_functions() and "concatenate" in tnp.native_functions()
    assert "sort" not in tnp.native_functions()


def test_submodules_return_our_arrays(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tnp.FallbackWarning)
        g = tnp.random.default_rng(5)
        x = g.standard_normal((4, 4))
        assert isinstance(x, tnp.ndarray)
        check(x, np.random.default_rng(5).standard_normal((4, 4)))
        inv = tnp.linalg.inv(x + 4 * tnp.eye(4))
        assert isinstance(inv, tnp.ndarray)
        check(inv @ (x + 4 * tnp.eye(4)), np.eye(4), rtol=1e-10)
        assert isinstance(tnp.fft.fft(x), tnp.ndarray)


def test_explain_shows_groups_and_kernels(rng):
    big = tnp.asarray(random_array(rng, (100_000,), np.float32))
    text = tnp.explain(big * 2 + tnp.sin(big))
    assert "1 group" in text and "def numpy_fused_" in text and "tw.sin(" in text
    m = tnp.asarray(random_array(rng, (400, 300), np.float64))
    text = tnp.explain(m - m.mean(axis=0))
    assert "2 group" in text and "reduce (sum over axes (0,))" in text and "a reduction ends its group" in text
    assert "nothing pending" in tnp.explain(big)
    assert "runs through NumPy" in tnp.explain(tnp.asarray(np.ones(100_000, np.complex64)) * 2)


def test_long_chains_are_cut(monkeypatch, rng):
    monkeypatch.setattr(expr, "SMALL", 0)
    x = random_array(rng, (1000,), np.float64)
    t, n = tnp.asarray(x), x.copy()
    for k in range(200):
        t = t * 0.999 + 0.001 * k
        n = n * 0.999 + 0.001 * k
    assert t._node.count <= expr.MAX_NODES
    check(t, n)


def test_creation_functions(mode):
    check(tnp.zeros((2, 3), np.int16), np.zeros((2, 3), np.int16))
    check(tnp.full(5, 2.5), np.full(5, 2.5))
    check(tnp.arange(2, 11, 3), np.arange(2, 11, 3))
    check(tnp.linspace(0, 1, 7), np.linspace(0, 1, 7))
    check(tnp.ones_like(tnp.zeros((2, 2), np.float32)), np.ones((2, 2), np.float32))
    check(tnp.asarray([[1, 2], [3, 4]]), np.asarray([[1, 2], [3, 4]]))
    check(tnp.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32))
    assert tnp.float32 is np.float32 and tnp.pi == np.pi and tnp.newaxis is None


@pytest.mark.parametrize("doc", ["README.md", "docs/numpy.md"])
def test_documented_programs_run(doc, capsys):
    """The first tilewise.numpy program of each page runs and computes what NumPy computes."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parent.parent / doc).read_text()
    code = next(c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "tilewise.numpy" in c)
    scope = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tnp.FallbackWarning)  # the README draws its data on the host
        exec(compile(code, doc, "exec"), scope)
    out = capsys.readouterr().out
    if doc == "README.md":
        x = np.asarray(scope["x"], np.float64)
        y = np.sqrt(x) * 2 + np.sin(x)
        assert "def numpy_fused_" in out
        assert float(out.strip().splitlines()[-1]) == pytest.approx(float((y * y).sum()), rel=1e-5)
    else:
        a, b, c, d, e = (np.asarray(scope[k], np.float64) for k in "abcde")
        check(scope["r"], (a * b + c * np.sin(d) - e).astype(np.float32), rtol=1e-5)
        assert scope["total"] == pytest.approx(float((a * a + b).sum()), rel=1e-5)


@pytest.mark.parametrize("shape", [(1,), (5000,), (33, 1037), (3, 4, 500), (7, 0)], ids=str)
def test_scans_and_arg_reductions(mode, rng, shape):
    for dt in (np.float32, np.float64, np.int8, np.int64, np.bool_):
        for _, x in views(rng, shape, dt):
            t = tnp.asarray(x)
            for axis in [None, *range(-len(shape), len(shape))]:
                with np.errstate(all="ignore"):
                    got, want = tnp.cumsum(t, axis=axis), np.cumsum(x, axis=axis)
                    if np.dtype(dt).kind == "f":  # blocked, not sequential, sums: a rounding per addition
                        scale = np.abs(x.astype(np.float64)).sum() + 1
                        check(got, want, rtol=16 * np.finfo(dt).eps * scale)
                    else:
                        check(got, want)
                    if dt == np.float64:
                        check(tnp.cumprod(t * 0.01 + 1, axis=axis), np.cumprod(x * 0.01 + 1, axis=axis))
                    if 0 in shape:
                        continue
                    for op in ("argmax", "argmin"):
                        check(getattr(tnp, op)(t, axis=axis), getattr(np, op)(x, axis=axis))
                        check(getattr(t, op)(axis=axis, keepdims=True), getattr(x, op)(axis=axis, keepdims=True))


def test_arg_reductions_take_the_first_nan_and_the_first_tie(mode):
    x = np.zeros(70_000)
    x[[5, 60_000]] = 3.0
    x[[100, 50_000]] = np.nan
    for op in ("argmax", "argmin"):
        assert int(getattr(tnp, op)(tnp.asarray(x))) == getattr(np, op)(x)
        y = np.where(np.isnan(x), 0, x)
        assert int(getattr(tnp, op)(tnp.asarray(y))) == getattr(np, op)(y)
    with pytest.raises(ValueError, match="empty sequence"):
        tnp.argmax(tnp.zeros((0,)))


def test_joins_and_views(mode, rng):
    x, y = random_array(rng, (300, 40), np.float32), random_array(rng, (300, 7), np.int16)
    tx, ty = tnp.asarray(x), tnp.asarray(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tnp.FallbackWarning)  # all of these run natively
        check(tnp.concatenate([tx * 2, ty], axis=1), np.concatenate([x * 2, y], axis=1))
        check(np.concatenate([tx, ty], axis=-1), np.concatenate([x, y], axis=-1))
        check(tnp.concatenate([tx[:5], tx[::-1][:3]]), np.concatenate([x[:5], x[::-1][:3]]))
        check(tnp.concatenate([tx, tx], axis=None), np.concatenate([x, x], axis=None))
        check(tnp.stack([tx, tx + 1], axis=1), np.stack([x, x + 1], axis=1))
        check(tnp.hstack([tx[0], tx[1]]), np.hstack([x[0], x[1]]))
        check(tnp.vstack([tx[0], tx[1]]), np.vstack([x[0], x[1]]))
        check(tnp.column_stack([tx[:, 0], ty]), np.column_stack([x[:, 0], y]))
        check(tnp.roll(tx, 7, axis=0), np.roll(x, 7, axis=0))
        check(tnp.roll(tx, -3), np.roll(x, -3))
        check(tnp.diff(tx, axis=0), np.diff(x, axis=0))
        check(tnp.diff(tx, n=2), np.diff(x, n=2))
        check(tnp.diff(tx > 0), np.diff(x > 0))
        check(tnp.outer(tx[0], tx[1]), np.outer(x[0], x[1]))
        check(tnp.transpose(tx), x.T)
        check(tnp.moveaxis(tx[None], 0, -1), np.moveaxis(x[None], 0, -1))
        check(tnp.flip(tx, axis=1), np.flip(x, axis=1))
        check(tnp.broadcast_to(tx[0], (3, 40)), np.broadcast_to(x[0], (3, 40)))
        check(tnp.atleast_2d(tx[0]), np.atleast_2d(x[0]))
        assert np.shares_memory(np.asarray(tnp.reshape(tx, (-1,))), np.asarray(tx))
        dst = tnp.zeros((300, 40), np.float64)
        tnp.copyto(dst, tx * 3)
        check(dst, (x * 3).astype(np.float64))
    with pytest.raises(ValueError, match="all the input array dimensions except for the concatenation axis"):
        tnp.concatenate([tx, ty], axis=0)
    with pytest.raises(ValueError, match="all input arrays must have the same shape"):
        tnp.stack([tx, ty])
    with pytest.raises(ValueError, match="need at least one array"):
        tnp.concatenate([])


@pytest.mark.parametrize("shapes", [((5, 7), (7, 3)), ((130, 70), (70, 90)), ((3, 40, 50), (50, 33)),
                                    ((64,), (64, 65)), ((200, 64), (64,))], ids=str)
def test_matmul_routes_to_tilewise_math(rng, shapes):
    for dt in (np.float32, np.float64):
        a, b = random_array(rng, shapes[0], dt), random_array(rng, shapes[1], dt)
        ta, tb = tnp.asarray(a), tnp.asarray(b)
        with warnings.catch_warnings():
            warnings.simplefilter("error", tnp.FallbackWarning)
            want = a.astype(np.float64) @ b
            check(ta @ tb, (a @ b), rtol=1e-4 if dt == np.float32 else 1e-10)
            np.testing.assert_allclose(np.asarray(tnp.matmul(ta * 1, tb)), want, rtol=1e-4, atol=1e-4)
            if len(shapes[0]) <= 2:
                check(tnp.dot(ta, tb), a.dot(b), rtol=1e-4 if dt == np.float32 else 1e-10)
    before = tnp.fallbacks().get("matmul", {"calls": 0})["calls"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tnp.FallbackWarning)  # warned once per line: counted below
        check(tnp.asarray(np.ones((2, 3), np.int64)) @ tnp.asarray(np.ones((3, 2), np.int64)), np.full((2, 2), 3))
    assert tnp.fallbacks()["matmul"]["calls"] == before + 1  # integer matmul: not a tilewise.math kernel yet


def test_reductions_read_by_one_group_keep_their_own_values(monkeypatch, rng):
    """A group that reads several reductions' results: each temporary result is held while the group's
    kernel is built, so no id is reused for another (which once read one reduction's values for the
    other's, now and then)."""
    monkeypatch.setattr(expr, "SMALL", 0)
    for _ in range(30):
        m = random_array(rng, (37, 45), np.float64)
        t = tnp.asarray(m)
        got = t - t.mean(axis=1, keepdims=True) + t.max(axis=1, keepdims=True) * t.min(axis=0) - t.sum(axis=0)
        want = m - m.mean(axis=1, keepdims=True) + m.max(axis=1, keepdims=True) * m.min(axis=0) - m.sum(axis=0)
        check(got, want)
