"""tilewise.math.matmul against NumPy in float64: dtypes, odd shapes, batch broadcasting, strided views,
every MatmulEpilog member against a NumPy statement of its nvmath/cuBLASLt meaning, user epilogs
(def and lambda, fused the same way), the stateful Matmul, and the errors raised before any work.
Kept small under cuda-emulated, where every distinct kernel costs seconds to build."""
import ml_dtypes
import numpy as np
import pytest

from tilewise.math import Matmul, MatmulEpilog, matmul

E = MatmulEpilog
TOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-5, "float64": 1e-12, "int8": 0}


def f64(x):
    return np.asarray(x).astype(np.float64)


def close(got, want, tol):
    got, want = f64(got), f64(want)
    assert got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want), initial=0)))
    err = float(np.max(np.abs(got - want), initial=0)) / scale
    assert err <= tol, f"relative error {err:.2e} > {tol:.1e}"


def operands(rng, m, n, k, dtype="float32"):
    dt = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    if dtype == "int8":
        return rng.integers(-100, 100, (m, k)).astype(np.int8), rng.integers(-100, 100, (k, n)).astype(np.int8)
    return rng.standard_normal((m, k)).astype(dt), rng.standard_normal((k, n)).astype(dt)


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def gelu_grad(x):
    t = np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3))
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * np.sqrt(2 / np.pi) * (1 + 3 * 0.044715 * x * x)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "int8"])
@pytest.mark.parametrize("mnk", [(1, 1, 1), (37, 53, 29)])
def test_dtypes_and_odd_shapes(backend, rng, dtype, mnk):
    m, n, k = mnk
    a, b = operands(rng, m, n, k, dtype)
    r = matmul(a, b)
    assert r.dtype == (np.int32 if dtype == "int8" else a.dtype)
    close(r, f64(a) @ f64(b), TOL[dtype])


def test_batch_broadcast_and_views(backend, rng):
    a = rng.standard_normal((2, 1, 9, 13)).astype(np.float32)
    bt = rng.standard_normal((3, 11, 13)).astype(np.float32)
    b = bt.transpose(0, 2, 1)                        # a transposed view, taken as it is
    close(matmul(a, b), f64(a) @ f64(b), 2e-5)
    x = rng.standard_normal((40, 30)).astype(np.float32)
    a2, b2 = x[:14, ::3].T, x[:14:, 1:19:2]          # strided on both axes: (10, 14) @ (14, 9)
    close(matmul(a2, b2), f64(a2) @ f64(b2), 2e-5)
    v = rng.standard_normal(13).astype(np.float32)   # 1-D operands as numpy.matmul treats them
    close(matmul(a, v), f64(a) @ f64(v), 2e-5)
    y = rng.standard_normal((4, 6, 7, 5)).astype(np.float32)[:, ::2]   # batch strides that do not merge
    b3 = rng.standard_normal((3, 5, 2)).astype(np.float32)
    close(matmul(y, b3), f64(y) @ f64(b3), 2e-5)
    for sa, sb in (((0, 5), (5, 3)), ((4, 0), (0, 3)), ((2, 0, 4, 5), (5, 3))):   # empty problems
        close(matmul(np.ones(sa, np.float32), np.ones(sb, np.float32)), np.ones(sa) @ np.ones(sb), 0)


def test_alpha_beta_c(backend, rng):
    a, b = operands(rng, 20, 17, 11)
    c = rng.standard_normal((20, 17)).astype(np.float32)
    close(matmul(a, b, c, alpha=0.5, beta=-2.0), 0.5 * f64(a) @ f64(b) - 2 * f64(c), 2e-5)
    col = rng.standard_normal((20, 1)).astype(np.float32)   # c broadcasts, as nvmath's (m, 1) c does
    close(matmul(a, b, col, beta=1.0), f64(a) @ f64(b) + col, 2e-5)


def _expected(epilog, ab, inputs):
    bias = inputs.get("bias")
    x = ab + bias if bias is not None else ab
    out = {E.DEFAULT: x, E.RELU: np.maximum(x, 0), E.RELU_AUX: np.maximum(x, 0), E.BIAS: x,
           E.RELU_BIAS: np.maximum(x, 0), E.RELU_AUX_BIAS: np.maximum(x, 0), E.GELU: gelu(x),
           E.GELU_AUX: gelu(x), E.GELU_BIAS: gelu(x), E.GELU_AUX_BIAS: gelu(x), E.BGRADA: x, E.BGRADB: x}
    if epilog in (E.DRELU, E.DRELU_BGRAD):
        out[epilog] = np.where(inputs["relu_aux"] != 0, ab, 0)
    if epilog in (E.DGELU, E.DGELU_BGRAD):
        out[epilog] = ab * gelu_grad(f64(inputs["gelu_aux"]))
    return out[epilog]


@pytest.mark.parametrize("epilog", list(MatmulEpilog), ids=lambda e: e.name)
def test_epilogs_against_numpy(backend, rng, epilog):
    m, n, k = 33, 21, 19
    a, b = operands(rng, m, n, k)
    ab = f64(a) @ f64(b)
    spec, inputs = epilog.spec, {}
    if "bias" in spec.inputs:
        inputs["bias"] = rng.standard_normal(m).astype(np.float32)   # (m,): one value per result row
    if "relu_aux" in spec.inputs:
        inputs["relu_aux"] = (rng.random((m, n)) < 0.5).astype(np.uint8)
    if "gelu_aux" in spec.inputs:
        inputs["gelu_aux"] = rng.standard_normal((m, n)).astype(np.float32)
    got = matmul(a, b, epilog=epilog, epilog_inputs=inputs or None)
    want = _expected(epilog, ab, {k: f64(v)[:, None] if k == "bias" else v for k, v in inputs.items()})
    extra = spec.aux + tuple(x for x in (spec.row_sum, spec.sum_a, spec.sum_b) if x)
    if not extra:
        close(got, want, 2e-5)
        return
    got, aux = got
    close(got, want, 2e-5)
    assert sorted(aux) == sorted(extra)
    pre = ab + f64(inputs["bias"])[:, None] if "bias" in inputs else ab
    if "relu_aux" in aux:      # a byte per element: 1 where the pre-activation is positive
        np.testing.assert_array_equal(aux["relu_aux"], (pre > 0).astype(np.uint8))
    if "gelu_aux" in aux:      # the pre-activation
        close(aux["gelu_aux"], pre, 2e-5)
    for name in ("drelu_bgrad", "dgelu_bgrad"):  # the bias gradient: the result summed over its columns
        if name in aux:
            close(aux[name], want.sum(axis=1), 1e-4)
    if "bgrada" in aux:        # A summed over k: one value per result row
        close(aux["bgrada"], f64(a).sum(axis=1), 1e-5)
    if "bgradb" in aux:        # B summed over k: one value per result column
        close(aux["bgradb"], f64(b).sum(axis=0), 1e-5)


def test_bias_shapes_and_batched_epilog(rng):
    a = rng.standard_normal((2, 10, 7)).astype(np.float64)
    b = rng.standard_normal((7, 12)).astype(np.float64)
    bias = rng.standard_normal((10, 1))
    r, aux = matmul(a, b, epilog=E.GELU_AUX_BIAS, epilog_inputs={"bias": bias})
    close(r, gelu(a @ b + bias), 1e-12)
    close(aux["gelu_aux"], a @ b + bias, 1e-12)
    grad = rng.standard_normal((2, 10, 12))
    r, aux = matmul(a, b, epilog=E.DGELU_BGRAD, epilog_inputs={"gelu_aux": grad})
    close(aux["dgelu_bgrad"], ((a @ b) * gelu_grad(grad)).sum(axis=-1), 1e-12)


def residual_gelu(acc, residual, scale):
    return MatmulEpilog.GELU(acc * scale) + residual


def test_user_epilogs_fuse(backend, rng):
    a, b = operands(rng, 25, 18, 12)
    res = rng.standard_normal((25, 18)).astype(np.float32)
    got = matmul(a, b, epilog=residual_gelu, epilog_inputs={"residual": res, "scale": 0.5})
    close(got, gelu(0.5 * (f64(a) @ f64(b))) + res, 2e-5)
    shift = 1.5
    row = rng.standard_normal(18).astype(np.float32)   # a row vector: one value per column
    got = matmul(a, b, epilog=lambda t, v: tw_max(t + v, shift), epilog_inputs={"v": row})
    close(got, np.maximum(f64(a) @ f64(b) + row, shift), 2e-5)


def tw_max(x, y):
    return max(x, y)     # Python's max on tiles is element-wise in tile code


def test_stateful_matmul(rng):
    a, b = operands(rng, 16, 8, 5)
    bias = rng.standard_normal(16).astype(np.float32)
    with Matmul(a, b) as mm:
        mm.plan(epilog=E.RELU_BIAS, epilog_inputs={"bias": bias})
        close(mm.execute(), np.maximum(f64(a) @ f64(b) + bias[:, None], 0), 2e-5)
        a2, b2 = operands(rng, 16, 8, 5)
        mm.reset_operands(a2, b2)
        close(mm.execute(), np.maximum(f64(a2) @ f64(b2) + bias[:, None], 0), 2e-5)
        with pytest.raises(ValueError, match="plan is for"):
            mm.reset_operands(*operands(rng, 4, 8, 5))
    with pytest.raises(RuntimeError, match="plan"):
        Matmul(a, b).execute()


def test_array_like_operands_keep_their_kind(rng):
    tnp = pytest.importorskip("tilewise.numpy")
    a, b = operands(rng, 6, 4, 3)
    ta, tb = tnp.asarray(a), tnp.asarray(b)
    r = matmul(ta, tb)
    assert type(r) is type(ta)
    close(np.asarray(r), f64(a) @ f64(b), 2e-5)

    class Wrapped:  # only __array__: the result is NumPy
        def __init__(self, x):
            self.x = x

        def __array__(self, dtype=None, copy=None):
            return self.x
    close(matmul(Wrapped(a), Wrapped(b)), f64(a) @ f64(b), 2e-5)


@pytest.mark.parametrize("call, error, words", [
    (lambda a, b: matmul(a, b[:3]), ValueError, ["inner dimensions", "(4, 5)", "(3, 6)"]),
    (lambda a, b: matmul(np.ones((2, 4, 5)), np.ones((3, 5, 6))), ValueError, ["batch", "(2, 4, 5)", "(3, 5, 6)"]),
    (lambda a, b: matmul(a, b.astype(np.float64)), TypeError, ["float32", "float64"]),
    (lambda a, b: matmul(a.astype(np.int16), b.astype(np.int16)), TypeError, ["int16"]),
    (lambda a, b: matmul(a, b, epilog=E.BIAS), ValueError, ["BIAS", "bias"]),
    (lambda a, b: matmul(a, b, epilog=E.BIAS, epilog_inputs={"bias": np.ones(6)}), ValueError,
     ["bias", "(6,)", "(4,)"]),
    (lambda a, b: matmul(a, b, epilog=E.RELU, epilog_inputs={"bias": np.ones(4)}), ValueError, ["RELU", "bias"]),
    (lambda a, b: matmul(a, b, np.ones((4, 6))), ValueError, ["beta"]),
    (lambda a, b: matmul(a, b, np.ones((3, 6)), beta=1.0), ValueError, ["c", "(3, 6)", "(4, 6)"]),
    (lambda a, b: matmul(a, b, epilog="relu"), TypeError, ["epilog"]),
])
def test_errors_name_the_operands(call, error, words):
    a, b = np.ones((4, 5), np.float32), np.ones((5, 6), np.float32)
    with pytest.raises(error) as info:
        call(a, b)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def broken_epilog(acc):
    return acc + not_defined_anywhere  # noqa: F821 - the error under test


def test_epilog_errors_point_at_the_users_line():
    import tilewise as tw

    a, b = np.ones((4, 5), np.float32), np.ones((5, 6), np.float32)
    with pytest.raises(tw.TileNameError, match=r"test_math\.py:\d+.*not_defined_anywhere"):
        matmul(a, b, epilog=broken_epilog)
    with pytest.raises(tw.TileValueError, match=r"epilog lambda at .*test_math\.py"):
        matmul(a, b, epilog=lambda t: t.reshape((7, 7)))
