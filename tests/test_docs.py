"""The documentation tells the truth: every public function is in docs/language.md, its first program
runs, and the rules docs/semantics.md states (the less obvious ones) hold on every host backend."""
import pathlib
import re

import ml_dtypes
import numpy as np
import pytest

import tilewise as tw
from tilewise.frontend.builtins import PUBLIC

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def test_every_public_function_is_documented():
    text = (DOCS / "language.md").read_text()
    missing = [n for n in PUBLIC if not re.search(r"tw\." + re.escape(n) + r"\b", text)]
    assert not missing, f"add these to docs/language.md: {missing}"


def test_docs_exist():
    for name in ("language.md", "semantics.md", "architecture.md"):
        assert len((DOCS / name).read_text()) > 2000


def test_language_intro_program_runs(backend, tmp_path):
    text = (DOCS / "language.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    path = tmp_path / "intro.py"  # a kernel's source must be in a file
    path.write_text(code)
    scope = {"__name__": "doc_intro"}
    exec(compile(code, str(path), "exec"), scope)
    np.testing.assert_array_equal(scope["c"], scope["a"] + scope["b"])


@tw.kernel
def _cast(x, y):
    tw.store(y, index=(0,), tile=tw.load(x, index=(0,), shape=(8,)).astype(y.dtype))


def _run_cast(x, dtype):
    y = np.zeros(x.shape, dtype)
    tw.launch(None, 1, _cast, (x, y))
    return y


def test_float_to_int64_saturates(backend):
    x = np.array([1e30, -1e30, np.nan, np.inf, -np.inf, 2.0**63, -2.0**63, -2.7])
    i64 = np.iinfo(np.int64)
    np.testing.assert_array_equal(_run_cast(x, np.int64),
                                  [i64.max, i64.min, 0, i64.max, i64.min, i64.max, i64.min, -2])
    u = np.array([2.0**64, 2.0**63, -5.0, 1e30, np.nan, np.inf, 3.9, 0.0])
    np.testing.assert_array_equal(_run_cast(u, np.uint64), [2**64 - 1, 2**63, 0, 2**64 - 1, 0, 2**64 - 1, 3, 0])


def test_float64_to_narrow_rounds_once(backend):
    # 1 + 2**-8 is halfway between two bfloat16 values; a hair above it must round up, and rounding
    # through float32 first would lose the hair and round to even (down).
    hair = 2.0**-40
    x = np.array([1 + 2**-8 + hair, 1 + 2**-8, -(1 + 2**-8 + hair), 1 + 3 * 2**-8, 1e300, 0.0, -0.0, np.nan])
    got = _run_cast(x, ml_dtypes.bfloat16).astype(np.float64)
    np.testing.assert_array_equal(got[:6], [1 + 2**-7, 1.0, -(1 + 2**-7), 1 + 2**-6, np.inf, 0.0])
    assert np.signbit(got[6]) and np.isnan(got[7])
    f8 = _run_cast(np.array([1 + 2**-4 + hair, 1e300, -np.inf, np.nan, 0, 1, 2, 3.0]), ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(f8.astype(np.float64)[:3], [1.125, 448.0, -448.0])
    ints = np.array([2**24 + 2**16 + 1, 3, -(2**24 + 2**16 + 1), 0, 1, 2, 5, 7], np.int32)
    np.testing.assert_array_equal(_run_cast(ints, ml_dtypes.bfloat16).astype(np.float64)[[0, 2]],
                                  [2**24 + 2**17, -(2**24 + 2**17)])


@tw.kernel
def _pad(x, y, T: tw.Constant[int]):
    tw.store(y, index=(0,), tile=tw.load(x, index=(0,), shape=(T,), padding_mode=tw.PaddingMode.NEG_INF))


def test_inf_padding_on_int_array_is_a_type_error(backend):
    with pytest.raises(tw.TileTypeError, match="NEG_INF needs a float array"):
        tw.launch(None, 1, _pad, (np.arange(3, dtype=np.int32), np.zeros(4, np.int32), 4))


@tw.kernel
def _scale(x, y, s):
    tw.store(y, index=(0,), tile=tw.load(x, index=(0,), shape=(4,)) * s)


def test_numpy_scalar_argument_keeps_its_dtype(backend):
    x = np.arange(4, dtype=np.float32)
    y = np.zeros(4, np.float64)
    tw.launch(None, 1, _scale, (x, y, np.float64(1) / 3))
    np.testing.assert_array_equal(y, x.astype(np.float64) / 3)
    assert "tile<float64>" in tw.compile(_scale, (x, y, np.float64(0.5))).ir
    assert "%s: tile<float32>" in tw.compile(_scale, (x, y, 0.5)).ir


@tw.kernel
def _print(x):
    t = tw.load(x, index=(0,), shape=(4,))
    print(f"sum={tw.sum(t):.2f} n={tw.bid(0):3d} v={tw.max(t)}")


def test_print_fstring_format_specs(backend, capsys):
    tw.launch(None, 2, _print, (np.array([0.5, 1.25, 2.0, 3.0], np.float32),))
    assert capsys.readouterr().out == "sum=6.75 n=  0 v=3.0\nsum=6.75 n=  1 v=3.0\n"


@tw.kernel
def _int_ops(a, b, q, r, s):
    x = tw.load(a, index=(0,), shape=(8,))
    y = tw.load(b, index=(0,), shape=(8,))
    tw.store(q, index=(0,), tile=x // y)
    tw.store(r, index=(0,), tile=x % y)
    tw.store(s, index=(0,), tile=x >> y)


def test_integer_division_and_shifts_as_documented(backend):
    a = np.array([-7, 7, 7, -7, -2**31, -2**31, -8, 5], np.int32)
    b = np.array([2, -2, 0, 0, -1, 1, 40, -1], np.int32)
    q, r, s = (np.zeros(8, np.int32) for _ in range(3))
    tw.launch(None, 1, _int_ops, (a, b, q, r, s))
    np.testing.assert_array_equal(q, [-4, -4, 0, 0, -2**31, -2**31, -8 // 40, -5])
    np.testing.assert_array_equal(r, [1, -1, 0, 0, 0, 0, -8 % 40, 0])
    np.testing.assert_array_equal(s, [-2, 0, 7, -7, -1, -2**30, -1, 0])
