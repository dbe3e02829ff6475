"""cuTile 1.6's names and forms that tilewise takes as cuTile does (issue 15), against NumPy on every backend."""
import typing

import numpy as np
import pytest

import tilewise as ct

CUTILE_16_NAMES = """astile bitwise_lshift bitwise_rshift divmod insert pack_to_bytes unpack_from_bytes reduce scan
static_eval print function load_advanced_indexing store_advanced_indexing Slice TiledView Scalar ScalarInt64
IndexedWithInt64 ArrayAnnotation ConstantAnnotation ListAnnotation float4_e2m1fn float8_e5m3fnu float8_e8m0fnu
compiler_timeout grid_dependency_control_wait grid_dependency_control_launch_dependents TileCompilerExecutionError
TileCompilerTimeoutError TileInternalError TileRecursionError TileStaticAssertionError TileStaticEvalError
TileUnsupportedFeatureError""".split()


def test_cutile_names_exist():
    assert [n for n in CUTILE_16_NAMES if not hasattr(ct, n)] == []


def test_error_classes_are_tilewise_errors():
    for n in CUTILE_16_NAMES:
        if n.endswith("Error"):
            assert issubclass(getattr(ct, n), ct.TileError)
    assert issubclass(ct.TileStaticAssertionError, ct.TileValueError)
    assert issubclass(ct.TileRecursionError, ct.TileUnsupportedError)
    assert ct.TileUnsupportedFeatureError is ct.TileUnsupportedError


# ---- shifts, divmod, arange, astile ----------------------------------------------------------------

@ct.kernel
def k_ints(x, y_shl, y_shr, y_q, y_r, T: ct.Constant[int]):
    t = ct.load(x, (0,), (T,))
    s = ct.arange(T, dtype=ct.int32) % 5
    ct.store(y_shl, (0,), ct.bitwise_lshift(t, s))
    ct.store(y_shr, (0,), ct.bitwise_rshift(t, s))
    q, r = divmod(t, 7)
    q2, r2 = ct.divmod(t, -3)
    ct.store(y_q, (0,), q * 1000 + q2)
    ct.store(y_r, (0,), r * 1000 + r2)


def test_shifts_and_divmod(backend, rng):
    n = 12
    x = rng.integers(-1000, 1000, n).astype(np.int32)
    outs = [np.zeros(n, np.int32) for _ in range(4)]
    ct.launch(None, (1,), k_ints, (x, *outs, n))
    s = np.arange(n) % 5
    np.testing.assert_array_equal(outs[0], x << s)
    np.testing.assert_array_equal(outs[1], x >> s)
    np.testing.assert_array_equal(outs[2], (x // 7) * 1000 + x // -3)
    np.testing.assert_array_equal(outs[3], (x % 7) * 1000 + x % -3)


@ct.kernel
def k_arange(y_i, y_f, start, T: ct.Constant[int]):
    ct.store(y_i, (0, 0), ct.arange(T, dtype=ct.int32, start=7, step=-1).reshape((1, T)))
    ct.store(y_i, (1, 0), ct.arange(T, dtype=ct.int32, start=start, step=3).reshape((1, T)))
    ct.store(y_f, (0,), ct.arange(T, dtype=ct.float32, start=0.5, step=0.25))


def test_arange_start_step(backend):
    n = 6
    y_i, y_f = np.zeros((2, n), np.int32), np.zeros(n, np.float32)
    ct.launch(None, (1,), k_arange, (y_i, y_f, -4, n))
    np.testing.assert_array_equal(y_i[0], 7 - np.arange(n))
    np.testing.assert_array_equal(y_i[1], -4 + 3 * np.arange(n))
    np.testing.assert_array_equal(y_f, 0.5 + 0.25 * np.arange(n, dtype=np.float32))


@ct.kernel
def k_astile(y, z, v):
    ct.store(y, (0, 0), ct.astile(((1, 2, 3), (4, v, 6)), dtype=ct.float32))
    ct.store(z, (0,), ct.astile(v, dtype=ct.int32))


def test_astile(backend):
    y, z = np.zeros((2, 3), np.float32), np.zeros(1, np.int32)
    ct.launch(None, (1,), k_astile, (y, z, 5))
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6]])
    assert z[0] == 5


# ---- static_eval, print, grid dependency control, function ---------------------------------------

@ct.function
def _double(t):
    return t * 2


@ct.kernel
def k_static(x, y, EVEN: ct.Constant[bool], T: ct.Constant[int]):
    t = ct.load(x, (0,), (T,))
    ct.grid_dependency_control_wait()
    r = ct.static_eval(t + 1 if EVEN else t - 1)
    n = ct.static_eval(sum(i for i in range(T)) + len(t.shape))
    ct.static_assert(all(s % 2 == 0 for s in t.shape), "even tiles")
    ct.grid_dependency_control_launch_dependents()
    ct.store(y, (0,), _double(r) + n)


def test_static_eval_and_noops(backend, rng):
    x = rng.standard_normal(8).astype(np.float32)
    for even in (True, False):
        y = np.zeros(8, np.float32)
        ct.launch(None, (1,), k_static, (x, y, even, 8))
        np.testing.assert_allclose(y, (x + (1 if even else -1)) * 2 + 29, rtol=1e-6)


@ct.kernel
def k_static_assert(x, T: ct.Constant[int]):
    ct.static_assert(T % 16 == 0, "T must be a multiple of 16")
    ct.store(x, (0,), ct.zeros((T,), ct.float32))


def test_static_assertion_error_class():
    with pytest.raises(ct.TileStaticAssertionError, match="multiple of 16") as e:
        ct.launch(None, (1,), k_static_assert, (np.zeros(8, np.float32), 8))
    assert e.value.loc is not None and e.value.loc[1] > 0


@ct.kernel
def k_static_eval_bad(x):
    ct.static_eval(undefined_name + 1)  # noqa: F821


def test_static_eval_error_class():
    with pytest.raises(ct.TileStaticEvalError, match="undefined_name"):
        ct.launch(None, (1,), k_static_eval_bad, (np.zeros(4, np.float32),))


def _recurse(t):
    return _recurse(t)


@ct.kernel
def k_recursive(x):
    ct.store(x, (0,), _recurse(ct.load(x, (0,), (4,))))


def test_recursion_error_class():
    with pytest.raises(ct.TileRecursionError, match="calls itself"):
        ct.launch(None, (1,), k_recursive, (np.zeros(4, np.float32),))


@ct.kernel
def k_print(x):
    t = ct.load(x, (0,), (2,))
    ct.print(f"v={ct.sum(t):.1f}", "end", sep=" | ")


def test_ct_print(backend, capfd):
    ct.launch(None, (1,), k_print, (np.array([1.0, 2.0], np.float32),))
    assert "v=3.0 | end" in capfd.readouterr().out


@ct.kernel
def k_not_yet(x):
    ct.insert(ct.load(x, (0,), (4,)), (0,), ct.zeros((2,), ct.float32))


def test_not_yet_names_say_valid_cutile():
    with pytest.raises(ct.TileUnsupportedError, match="valid cuTile, not supported by tilewise yet: insert"):
        ct.launch(None, (1,), k_not_yet, (np.zeros(4, np.float32),))


@ct.kernel
def k_fp4(x):
    ct.store(x, (0,), ct.load(x, (0,), (4,)).astype(ct.float8_e8m0fnu).astype(ct.float32))


def test_block_scaled_types_are_named_and_refused_in_kernels():
    assert ct.float4_e2m1fn.bits == 4 and ct.float8_e8m0fnu.bits == 8 and ct.float8_e5m3fnu.bits == 8
    with pytest.raises(ct.TileUnsupportedError, match="float8_e8m0fnu"):
        ct.launch(None, (1,), k_fp4, (np.zeros(4, np.float32),))


def test_compiler_timeout_is_a_context_manager():
    from tilewise.language import current_compiler_timeout
    with ct.compiler_timeout(10):
        assert current_compiler_timeout() == 10
    assert current_compiler_timeout() is None
    with pytest.raises(ValueError):
        with ct.compiler_timeout(0):
            pass


# ---- Constant annotations --------------------------------------------------------------------------

@ct.kernel
def k_const_int(y, N: ct.Constant[int]):
    ct.store(y, (0,), ct.full((1,), N * 3, ct.int32))


@ct.kernel
def k_const_bare(y, N: ct.Constant, F: typing.Annotated[float, ct.ConstantAnnotation()]):
    ct.static_assert(isinstance(N, int))
    ct.store(y, (0,), ct.full((1,), N * F, ct.float32))


@ct.kernel
def k_scalar64(y, n: ct.ScalarInt64, a: ct.IndexedWithInt64):
    ct.static_assert(n.dtype == ct.int64)
    ct.store(y, (0,), ct.full((1,), n, ct.int64))


def test_constant_int_accepts_bools(backend):
    y = np.zeros(1, np.int32)
    for v, want in ((True, 3), (False, 0), (np.int64(5), 15), (4, 12)):
        ct.launch(None, (1,), k_const_int, (y, v))
        assert y[0] == want


def test_constant_int_refuses_floats_and_strings():
    with pytest.raises(ct.TileLaunchError, match=r"Constant\[int\]"):
        ct.launch(None, (1,), k_const_int, (np.zeros(1, np.int32), 2.5))


def test_bare_and_annotated_constants(backend):
    y = np.zeros(1, np.float32)
    ct.launch(None, (1,), k_const_bare, (y, 3, 1.5))
    assert y[0] == 4.5
    assert set(k_const_bare.constant_params) == {"N", "F"}


def test_scalar_int64_annotation(backend):
    y = np.zeros(1, np.int64)
    ct.launch(None, (1,), k_scalar64, (y, 7, np.zeros(2, np.float32)))
    assert y[0] == 7


def test_annotation_objects_check_their_fields():
    assert ct.ArrayAnnotation(index_dtype=ct.int64, static_shape_dims=(0,)).static_shape_dims == (0,)
    with pytest.raises(ValueError):
        ct.ArrayAnnotation(index_dtype=ct.float32)
    assert isinstance(ct.ListAnnotation(element=ct.IndexedWithInt64).element, ct.ArrayAnnotation)


# ---- dynamic extract -------------------------------------------------------------------------------

@ct.kernel
def k_extract(x, y, TM: ct.Constant[int], TN: ct.Constant[int], NT: ct.Constant[int]):
    w = ct.load(x, (0, 0), (TM, TN * NT))
    for j in range(NT):
        t = w.extract((0, j), (TM, TN))
        ct.store(y, (0, j), t * 2.0 + j)


@ct.kernel
def k_extract_runtime_index(x, y, j, TN: ct.Constant[int], NT: ct.Constant[int]):
    w = ct.load(x, (0,), (TN * NT,))
    ct.store(y, (0,), ct.extract(w, (j,), (TN,)))


def test_dynamic_extract_in_loop(backend, rng):
    tm, tn, nt = 3, 4, 5
    x = rng.standard_normal((tm, tn * nt)).astype(np.float32)
    y = np.zeros_like(x)
    ct.launch(None, (1,), k_extract, (x, y, tm, tn, nt))
    np.testing.assert_allclose(y, x * 2 + np.repeat(np.arange(nt), tn)[None, :], rtol=1e-6)


def test_dynamic_extract_clamps_out_of_range(backend):
    x = np.arange(12, dtype=np.float32)
    for j, want in ((1, x[4:8]), (2, x[8:12]), (7, x[8:12]), (-3, x[0:4])):
        y = np.zeros(4, np.float32)
        ct.launch(None, (1,), k_extract_runtime_index, (x, y, j, 4, 3))
        np.testing.assert_array_equal(y, want)


# ---- 0-d loads and 0-d arrays ------------------------------------------------------------------------

@ct.kernel
def k_zero_d(ids, table, scale, out, total, T: ct.Constant[int]):
    bid = ct.bid(0)
    e = ct.load(ids, index=bid, shape=())
    v = ct.load(table, index=(e, 1), shape=())
    s = ct.load(scale, index=(), shape=())
    ct.store(out, (bid,), ct.full((T,), v * s, ct.float32))
    ct.atomic_add(total, (), v)


@ct.kernel
def k_store_zero_d(x, out):
    ct.store(out, (), ct.sum(ct.load(x, (0,), (4,))))


def test_zero_d_loads_and_arrays(backend, rng):
    table = rng.standard_normal((5, 3)).astype(np.float32)
    ids = np.array([4, 0, 2, 2], np.int32)
    scale = np.array(2.0, np.float32)
    out, total = np.zeros(8, np.float32), np.zeros((), np.float32)
    ct.launch(None, (4,), k_zero_d, (ids, table, scale, out, total, 2))
    np.testing.assert_allclose(out, np.repeat(table[ids, 1] * 2.0, 2), rtol=1e-6)
    np.testing.assert_allclose(total, table[ids, 1].sum(), rtol=1e-5)
    x, o = np.arange(4, dtype=np.float32), np.zeros((), np.float32)
    ct.launch(None, (1,), k_store_zero_d, (x, o))
    assert o == 6.0
