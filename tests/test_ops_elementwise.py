"""Elementwise ops, promotion and casts, each checked against NumPy (or Python integers) on random data.

Every kernel works on a 1-D array of N elements in tiles of T, so the last tile is partial."""
import math

import ml_dtypes
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw

N, T = 37, 16
GRID = (tw.cdiv(N, T),)

INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]
ALL = ["bool"] + INTS + FLOATS
NP = {"bool": np.bool_, "bfloat16": ml_dtypes.bfloat16}
TW = {"bool": tw.bool_}


def npdt(name):
    return np.dtype(NP.get(name, name))


def twdt(name):
    return TW.get(name) or getattr(tw, name)


def _apply(op, x, y):
    """The operator spelled `op`, inlined into the kernel (`op` is a compile-time string)."""
    if op == "add":
        return x + y
    elif op == "sub":
        return x - y
    elif op == "mul":
        return x * y
    elif op == "truediv":
        return x / y
    elif op == "floordiv":
        return x // y
    elif op == "mod":
        return x % y
    elif op == "pow":
        return x ** y
    elif op == "and":
        return x & y
    elif op == "or":
        return x | y
    elif op == "xor":
        return x ^ y
    elif op == "shl":
        return x << y
    elif op == "shr":
        return x >> y
    elif op == "eq":
        return x == y
    elif op == "ne":
        return x != y
    elif op == "lt":
        return x < y
    elif op == "le":
        return x <= y
    elif op == "gt":
        return x > y
    elif op == "ge":
        return x >= y
    elif op == "minimum":
        return tw.minimum(x, y)
    elif op == "maximum":
        return tw.maximum(x, y)
    elif op == "atan2":
        return tw.atan2(x, y)
    elif op == "neg":
        return -x
    elif op == "invert":
        return ~x
    elif op == "pyabs":
        return abs(x)
    elif op == "not":
        return tw.logical_not(x)
    return getattr(tw, op)(x)


@tw.kernel
def binary_k(a, b, c, OP: tw.Constant[str], DT: tw.Constant[object], T: tw.Constant[int]):
    i = tw.bid(0)
    z = _apply(OP, tw.load(a, i, shape=T), tw.load(b, i, shape=T))
    assert z.dtype is DT, f"{OP}: result dtype {z.dtype}, expected {DT}"
    tw.store(c, i, z)


@tw.kernel
def unary_k(a, c, OP: tw.Constant[str], DT: tw.Constant[object], T: tw.Constant[int]):
    i = tw.bid(0)
    z = _apply(OP, tw.load(a, i, shape=T), None)
    assert z.dtype is DT, f"{OP}: result dtype {z.dtype}, expected {DT}"
    tw.store(c, i, z)


@tw.kernel
def batch_k(xs, ys, outs, OPS: tw.Constant[tuple], DTS: tw.Constant[tuple], T: tw.Constant[int]):
    """outs[k] = OPS[k](xs[k], ys[k]) for every k: many ops, one specialisation (one compile)."""
    i = tw.bid(0)
    for k in range(len(OPS)):  # constant bounds and constant-indexed lists: unrolled
        z = _apply(OPS[k], tw.load(xs[k], i, shape=T), tw.load(ys[k], i, shape=T))
        assert z.dtype is DTS[k], f"{OPS[k]}: result dtype {z.dtype}, expected {DTS[k]}"
        tw.store(outs[k], i, z)


def run_binary(op, a, b, out_dt):
    c = np.zeros(N, out_dt.np)
    tw.launch(None, GRID, binary_k, (a, b, c, op, out_dt, T))
    return c


def run_unary(op, a, out_dt):
    c = np.zeros(N, out_dt.np)
    tw.launch(None, GRID, unary_k, (a, c, op, out_dt, T))
    return c


class Batch:
    """Collects (op, operands, result dtype, expected) checks and runs them in one launch."""

    def __init__(self):
        self.cases = []

    def add(self, op, x, y, out_dt, want, close=None, msg=None):
        """`close` is None for exact comparison, or (dtype name, rtol or None) for a tolerance."""
        self.cases.append((op, x, x if y is None else y, out_dt, want, close, msg or op))

    def run(self):
        cs = self.cases
        outs = [np.zeros(N, c[3].np) for c in cs]
        tw.launch(None, GRID, batch_k, ([c[1] for c in cs], [c[2] for c in cs], outs,
                                        tuple(c[0] for c in cs), tuple(c[3] for c in cs), T))
        for got, (_, _, _, _, want, close, msg) in zip(outs, cs):
            if close is None:
                np.testing.assert_array_equal(got, want, err_msg=msg)
            else:
                assert_close(got, want, close[0], msg, rtol=close[1])


def wrap(values, dt):
    """Python ints -> dt with two's-complement wrap-around."""
    bits = np.dtype(dt).itemsize * 8
    out = [(int(v) & ((1 << bits) - 1)) for v in values]
    if np.dtype(dt).kind == "i":
        out = [v - (1 << bits) if v >= 1 << (bits - 1) else v for v in out]
    return np.array(out, dtype=dt)


def py_floordiv(x, y):
    return 0 if y == 0 else x // y


def py_mod(x, y):
    return 0 if y == 0 else x % y


def py_pow(x, y):
    if y >= 0:
        return x ** y
    return 1 if x == 1 else (-1) ** (y % 2) if x == -1 else 0


INT_REF = {"add": lambda x, y: x + y, "sub": lambda x, y: x - y, "mul": lambda x, y: x * y,
           "floordiv": py_floordiv, "mod": py_mod, "pow": py_pow, "and": lambda x, y: x & y,
           "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y, "shl": lambda x, y: x << y,
           "shr": lambda x, y: x >> y, "minimum": min, "maximum": max}
CMP_REF = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
           "ge": np.greater_equal}
FLOAT_REF = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "truediv": np.true_divide,
             "floordiv": np.floor_divide, "mod": np.mod, "pow": np.power, "minimum": np.minimum,
             "maximum": np.maximum, "atan2": np.arctan2}
RTOL = {"float16": 2e-3, "bfloat16": 1.6e-2, "float32": 2e-6, "float64": 1e-13}


def assert_close(got, want, dt_name, what, rtol=None):
    got64 = np.asarray(got).astype(np.float64)
    want64 = np.asarray(want).astype(np.float64)
    rtol = RTOL[dt_name] if rtol is None else rtol
    np.testing.assert_allclose(got64, want64, rtol=rtol, atol=rtol, equal_nan=True, err_msg=what)


# ---- binary operators over the dtype matrix -------------------------------------------------------

@pytest.mark.parametrize("dt", ALL)
def test_binary_ops_same_dtype(backend, rng, dt):
    a, b = random_array(rng, N, npdt(dt)), random_array(rng, N, npdt(dt))
    D, B = twdt(dt), Batch()
    if dt == "bool":
        for op in ("and", "or", "xor"):
            B.add(op, a, b, tw.bool_, INT_REF[op](a, b))
        for op in ("add", "mul"):  # bool arithmetic counts, like Python's True + True
            B.add(op, a, b, tw.int32, INT_REF[op](a.astype(np.int32), b.astype(np.int32)))
        for op, ref in (("minimum", np.minimum), ("maximum", np.maximum)):
            B.add(op, a, b, tw.bool_, ref(a, b))
    elif dt in INTS:
        info = np.iinfo(npdt(dt))
        shift = rng.integers(0, info.bits, N).astype(npdt(dt))
        small = rng.integers(0, 5, N).astype(npdt(dt))
        if info.min < 0:
            small = small - 2  # negative exponents too
        for op, rhs in [("add", b), ("sub", b), ("mul", b), ("floordiv", b), ("mod", b), ("and", b), ("or", b),
                        ("xor", b), ("minimum", b), ("maximum", b), ("shl", shift), ("shr", shift),
                        ("pow", small)]:
            B.add(op, a, rhs, D, wrap([INT_REF[op](int(x), int(y)) for x, y in zip(a, rhs)], npdt(dt)))
        nonzero = np.where(b == 0, 1, b).astype(a.dtype)
        B.add("truediv", a, nonzero, tw.float32, (a.astype(np.float64) / nonzero).astype(np.float32),
              close=("float32", None))
    else:
        for op in FLOAT_REF:
            x, y = (np.abs(a) + 0.5, b % 3) if op == "pow" else (a, b)
            x, y = x.astype(npdt(dt)), y.astype(npdt(dt))
            want = FLOAT_REF[op](x.astype(np.float64), y.astype(np.float64))
            rtol = None if op not in ("floordiv", "mod") else RTOL[dt] * 4
            B.add(op, x, y, D, want.astype(npdt(dt)), close=(dt, rtol))
    for op, ref in CMP_REF.items():
        B.add(op, a, b, tw.bool_, ref(a, b))
    B.run()


@pytest.mark.parametrize("dt", INTS)
def test_int_division_by_zero_and_floor_semantics(backend, dt):
    info = np.iinfo(npdt(dt))
    a = wrap(([7, -7, 7, -7, 0, 5, int(info.max), int(info.min)] * N)[:N], npdt(dt))
    b = wrap(([2, 2, -2, -2, 3, 0, 0, -1] * N)[:N], npdt(dt))
    B = Batch()
    for op in ("floordiv", "mod"):
        B.add(op, a, b, twdt(dt), wrap([INT_REF[op](int(x), int(y)) for x, y in zip(a, b)], npdt(dt)))
    B.run()


@pytest.mark.parametrize("dt", ["int8", "int32", "int64", "uint8", "uint32", "uint64"])
def test_integer_overflow_wraps(backend, dt):
    info = np.iinfo(npdt(dt))
    D, B = twdt(dt), Batch()
    a = np.full(N, info.max, npdt(dt))
    b = np.resize(np.array([1, 2, info.max], npdt(dt)), N)
    for op in ("add", "mul", "sub"):
        x, y = (b, a) if op == "sub" else (a, b)
        B.add(op, x, y, D, wrap([INT_REF[op](int(p), int(q)) for p, q in zip(x, y)], npdt(dt)))
    s = np.full(N, info.bits - 1, npdt(dt))
    B.add("shl", a, s, D, wrap([int(x) << (info.bits - 1) for x in a], npdt(dt)))
    # shifting by the width or more gives 0, or the sign for an arithmetic right shift (PTX clamps the amount)
    s = np.resize(np.array([info.bits, info.bits + 3], npdt(dt)), N)
    x = wrap(np.resize([-5, 9], N), npdt(dt))
    B.add("shl", x, s, D, np.zeros(N, npdt(dt)))
    B.add("shr", x, s, D, wrap([-1 if v < 0 else 0 for v in x], npdt(dt)))
    B.run()


@pytest.mark.parametrize("da,db,want", [
    ("int8", "uint8", "int16"), ("int8", "int32", "int32"), ("uint16", "int16", "int32"),
    ("uint32", "int64", "int64"), ("uint64", "int64", "int64"), ("bool", "int8", "int8"),
    ("bool", "float16", "float16"), ("int32", "float16", "float16"), ("int64", "float32", "float32"),
    ("float16", "bfloat16", "float32"), ("float16", "float32", "float32"), ("bfloat16", "float64", "float64"),
    ("uint8", "bfloat16", "bfloat16"),
])
def test_promotion_between_dtypes(backend, rng, da, db, want):
    a, b = random_array(rng, N, npdt(da)), random_array(rng, N, npdt(db))
    W, B = twdt(want), Batch()
    for op in ("add", "mul", "maximum"):
        ref = FLOAT_REF[op](a.astype(np.float64), b.astype(np.float64)).astype(npdt(want))
        B.add(op, a, b, W, ref, close=(want, None) if W.is_float else None)
    B.run()


@tw.kernel
def scalar_rhs_k(a, c, S: tw.Constant[object], DT: tw.Constant[object], T: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, i, shape=T)
    z = (x + S) * 2 - S
    w = 3 - x
    assert z.dtype is DT, f"x + {S!r}: {z.dtype}, expected {DT}"
    assert w.dtype is DT or S != int(S), f"3 - x: {w.dtype}"
    tw.store(c, i, z)


@pytest.mark.parametrize("dt,s,want", [
    ("int8", 3, "int8"), ("uint8", 7, "uint8"), ("int16", 2.5, "float32"), ("int64", 1.5, "float32"),
    ("float16", 1.5, "float16"), ("bfloat16", 3, "bfloat16"), ("float64", 0.25, "float64"),
    ("bool", 2, "int32"), ("float32", True, "float32"),
])
def test_promotion_with_python_scalars(backend, rng, dt, s, want):
    """Python numbers are weak: they adopt the tile's dtype unless their kind is wider (int tile, float)."""
    a = random_array(rng, N, npdt(dt))
    c = np.zeros(N, npdt(want))
    tw.launch(None, GRID, scalar_rhs_k, (a, c, s, twdt(want), T))
    if twdt(want).is_float:  # round after every op, as the kernel does
        r = lambda v: np.asarray(v, np.float64).astype(npdt(want)).astype(np.float64)  # noqa: E731
        x = a.astype(np.float64)
        ref = r(r(r(x + float(s)) * 2) - float(s)).astype(npdt(want))
        np.testing.assert_array_equal(c, ref)
    else:
        np.testing.assert_array_equal(c, wrap([(int(x) + s) * 2 - s for x in a], npdt(want)))


def test_python_scalar_that_does_not_fit_is_an_error(backend, rng):
    a = random_array(rng, N, np.int8)
    with pytest.raises(tw.TileValueError, match="does not fit") as e:
        tw.launch(None, GRID, scalar_rhs_k, (a, np.zeros(N, np.int8), 1000, tw.int8, T))
    assert e.value.loc is not None and e.value.loc[0] == __file__


def test_bitwise_on_float_is_a_type_error(backend, rng):
    a = random_array(rng, N, np.float32)
    with pytest.raises(tw.TileTypeError, match="bitwise") as e:
        run_binary("and", a, a, tw.float32)
    assert e.value.loc[0] == __file__


# ---- unary operators and math functions ---------------------------------------------------------

MATH = {"exp": np.exp, "exp2": np.exp2, "log": np.log, "log2": np.log2, "log10": np.log10, "log1p": np.log1p,
        "expm1": np.expm1, "sqrt": np.sqrt, "rsqrt": lambda x: 1 / np.sqrt(x), "sin": np.sin, "cos": np.cos,
        "tan": np.tan, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh, "asin": np.arcsin,
        "acos": np.arccos, "atan": np.arctan, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "erf": np.vectorize(math.erf, otypes=[np.float64]), "abs": np.abs, "floor": np.floor, "ceil": np.ceil,
        "trunc": np.trunc, "round": np.rint, "neg": np.negative, "pyabs": np.abs}
POSITIVE = {"log", "log2", "log10", "sqrt", "rsqrt"}
UNIT = {"asin", "acos", "log1p"}
PRED = {"isnan": np.isnan, "isinf": np.isinf, "isfinite": np.isfinite}


@pytest.mark.parametrize("dt", FLOATS)
def test_math_functions(backend, rng, dt):
    base, B = random_array(rng, N, np.float64), Batch()
    for op, ref in MATH.items():
        x = np.abs(base) + 0.05 if op in POSITIVE else np.tanh(base) * 0.95 if op in UNIT else base
        if op in ("tan", "exp", "exp2", "sinh", "cosh", "expm1"):
            x = np.clip(x, -1.4, 1.4)  # stay away from poles and fp16 overflow
        x = x.astype(npdt(dt))
        want = ref(x.astype(np.float64)).astype(npdt(dt))
        rtol = RTOL[dt] * (1 if dt != "float32" else 2)
        if op in ("floor", "ceil", "trunc", "round", "neg", "abs", "pyabs"):
            rtol = 0
        B.add(op, x, None, twdt(dt), want, close=(dt, rtol), msg=f"{op} {dt}")
    special = np.resize(np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 3.0]), N).astype(npdt(dt))
    for op, ref in PRED.items():
        B.add(op, special, None, tw.bool_, ref(special.astype(np.float64)))
    B.run()


@pytest.mark.parametrize("dt", ["int8", "int32", "int64", "uint16", "uint64"])
def test_unary_on_integers(backend, rng, dt):
    info = np.iinfo(npdt(dt))
    a = random_array(rng, N, npdt(dt))
    a[0], a[1] = info.min, info.max
    D, B = twdt(dt), Batch()
    B.add("neg", a, None, D, wrap([-int(x) for x in a], npdt(dt)))
    B.add("invert", a, None, D, wrap([~int(x) for x in a], npdt(dt)))
    B.add("abs", a, None, D, wrap([abs(int(x)) for x in a], npdt(dt)))
    for op in ("floor", "ceil"):  # identity on integers
        B.add(op, a, None, D, a)
    for op in ("isnan", "isinf", "isfinite"):
        B.add(op, a, None, tw.bool_, np.full(N, op == "isfinite"))
    # math functions on integer tiles compute in float32
    pos = np.minimum((np.abs(a.astype(np.float64)) % 50 + 1), 20).astype(npdt(dt))
    for op in ("sqrt", "log", "exp2"):
        B.add(op, pos, None, tw.float32, MATH[op](pos.astype(np.float64)).astype(np.float32),
              close=("float32", 4e-6))
    B.run()


def test_bool_invert_and_not(backend, rng):
    a, B = random_array(rng, N, np.bool_), Batch()
    B.add("invert", a, None, tw.bool_, ~a)
    B.add("not", a, None, tw.bool_, ~a)
    B.add("neg", a, None, tw.int32, -a.astype(np.int32))
    B.add("abs", a, None, tw.int32, a.astype(np.int32))
    B.run()


# ---- where, function forms, Python builtins ----------------------------------------------------------

@tw.kernel
def where_k(a, b, c, M: tw.Constant[int], K: tw.Constant[int]):
    x = tw.load(a, (0, 0), shape=(M, K))
    col = tw.load(b, (0,), shape=(M,))[:, None]
    y = tw.where(col > 0, x, 0.5)              # broadcast condition, scalar branch
    z = tw.where(x > col, -1.0, y)             # scalar first branch
    w = tw.where(x < 0, tw.zeros((M, K), tw.float32), z)
    tw.store(c, (0, 0), w)


def test_where_broadcasts(backend, rng):
    a, b = random_array(rng, (6, 5), np.float32), random_array(rng, 6, np.float32)
    c = np.zeros_like(a)
    tw.launch(None, (1,), where_k, (a, b, c, 6, 5))
    col = b[:, None]
    want = np.where(a < 0, 0, np.where(a > col, -1.0, np.where(col > 0, a, 0.5)))
    np.testing.assert_array_equal(c, want.astype(np.float32))


@tw.kernel
def function_forms_k(a, b, out, T: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, i, shape=T)
    y = tw.load(b, i, shape=T)
    results = (tw.add(x, y), tw.sub(x, y), tw.mul(x, 2.0),
               tw.truediv(x, y, rounding_mode=tw.RoundingMode.RN, flush_to_zero=True),
               tw.truediv(x, y, rounding_mode=tw.RoundingMode.APPROX),
               tw.exp(x, flush_to_zero=True), tw.sqrt(tw.abs(x), rounding_mode=tw.RoundingMode.RN),
               max(x, 0.0), min(x, y, 0.5), abs(x), tw.maximum(x, 1), tw.minimum(2, y),
               tw.negative(x), tw.floordiv(x, y), tw.where(tw.greater(x, y), x, y),
               tw.pow(tw.abs(x), y), tw.pow(x, 2), tw.atan2(y, x))
    for k in range(len(results)):
        tw.store(out, (k, i), results[k][None, :])


def test_function_forms_and_python_builtins(backend, rng):
    a, b = random_array(rng, N, np.float32), random_array(rng, N, np.float32)
    b[np.abs(b) < 0.1] = 1.0
    out = np.zeros((18, N), np.float32)
    tw.launch(None, GRID, function_forms_k, (a, b, out, T))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    want = [a64 + b64, a64 - b64, a64 * 2, a64 / b64, a64 / b64, np.exp(a64), np.sqrt(np.abs(a64)),
            np.maximum(a64, 0), np.minimum(np.minimum(a64, b64), 0.5), np.abs(a64), np.maximum(a64, 1),
            np.minimum(2, b64), -a64, np.floor_divide(a64, b64), np.where(a64 > b64, a64, b64),
            np.abs(a64) ** b64, a64 ** 2, np.arctan2(b64, a64)]
    for k, w in enumerate(want):
        assert_close(out[k], w.astype(np.float32), "float32", f"result {k}", rtol=1e-6)


@tw.kernel
def scalar_builtins_k(out):
    tw.store(out, (0,), max(2, 7) - min(3, 1) + abs(-4))      # folded in Python: 7 - 1 + 4
    s = tw.bid(0) - 5                                           # a runtime scalar
    tw.store(out, (1,), abs(s) + max(s, -1) * 10 + min(s, 2, 9) * 100)


def test_python_builtins_on_scalars(backend):
    out = np.zeros(2, np.int32)
    tw.launch(None, (1,), scalar_builtins_k, (out,))
    np.testing.assert_array_equal(out, [10, 5 - 10 - 500])


# ---- casts ------------------------------------------------------------------------------------------

@tw.kernel
def cast_k(a, c, DT: tw.Constant[object], T: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, i, shape=T)
    tw.store(c, i, x.astype(DT))


@tw.kernel
def cast_many_k(a, outs, T: tw.Constant[int]):
    i = tw.bid(0)
    x = tw.load(a, i, shape=T)
    for k in range(len(outs)):
        tw.store(outs[k], i, x.astype(outs[k].dtype))


def run_cast(a, dt_name):
    c = np.zeros(a.shape, npdt(dt_name))
    tw.launch(None, (tw.cdiv(a.size, T),), cast_k, (a, c, twdt(dt_name), T))
    return c


def run_casts(a, dt_names):
    """a.astype(d) for every d in dt_names, in one launch."""
    outs = [np.zeros(a.shape, npdt(d)) for d in dt_names]
    tw.launch(None, (tw.cdiv(a.size, T),), cast_many_k, (a, outs, T))
    return outs


@pytest.mark.parametrize("src", ALL)
def test_cast_matrix(backend, rng, src):
    a = random_array(rng, N, npdt(src))
    if src in FLOATS:
        a = (a.astype(np.float64) * 10).astype(npdt(src))  # beyond int8's range sometimes
    for dst, got in zip(ALL, run_casts(a, ALL)):
        if dst == "bool":
            want = a.astype(np.float64) != 0
        elif src in FLOATS and dst in INTS:
            info = np.iinfo(npdt(dst))
            want = np.clip(np.trunc(a.astype(np.float64)), info.min, info.max).astype(npdt(dst))
        elif dst in INTS:
            want = wrap([int(x) for x in a], npdt(dst))
        else:
            want = a.astype(np.float64).astype(npdt(dst)) if src != "bfloat16" else a.astype(npdt(dst))
        np.testing.assert_array_equal(got, want, err_msg=f"{src} -> {dst}")


@pytest.mark.parametrize("src", ["float32", "float64", "float16"])
def test_float_to_int_saturates_and_nan_is_zero(backend, src):
    a = np.resize(np.array([np.nan, np.inf, -np.inf, 1e30, -1e30, 2.9, -2.9, -0.5]), N)
    with np.errstate(over="ignore"):
        x = a.astype(npdt(src))
    dsts = ["int8", "int32", "int64", "uint8", "uint32", "uint64", "bool"]
    for dst, got in zip(dsts, run_casts(x, dsts)):
        if dst == "bool":
            np.testing.assert_array_equal(got, a != 0)  # NaN is truthy
            continue
        info = np.iinfo(npdt(dst))
        want = np.resize(np.array([0, info.max, info.min, info.max, info.min, 2, max(-2, info.min), 0], dst), N)
        np.testing.assert_array_equal(got, want, err_msg=f"{src} -> {dst}")


@pytest.mark.parametrize("f8", ["float8_e4m3fn", "float8_e5m2"])
def test_float8_casts_saturate(backend, rng, f8):
    f8dt = getattr(ml_dtypes, f8)
    hi = float(ml_dtypes.finfo(f8dt).max)
    a = (rng.standard_normal(N) * 4).astype(np.float32)
    a[:4] = [1e6, -1e6, np.nan, hi * 1.01]
    got = run_cast(a, f8)
    assert got.dtype == f8dt
    want = np.where(np.isnan(a), np.nan, np.clip(a, -hi, hi)).astype(f8dt)
    np.testing.assert_array_equal(got.astype(np.float32), want.astype(np.float32))
    back = run_cast(got, "float32")  # exact widening
    np.testing.assert_array_equal(back, got.astype(np.float32))


def test_bfloat16_round_trip(backend, rng):
    a = rng.standard_normal(N).astype(np.float32) * 100
    got = run_cast(a, "bfloat16")
    np.testing.assert_array_equal(got, a.astype(ml_dtypes.bfloat16))  # round to nearest even
    np.testing.assert_array_equal(run_cast(got, "float64"), got.astype(np.float64))


def test_tfloat32_rounds_mantissa_to_10_bits(backend, rng):
    a = (rng.standard_normal(N) * 1000).astype(np.float32)
    a[0], a[1] = np.float32(1 + 2**-11 + 2**-20), np.float32(1 + 2**-11)  # above a tie; an exact tie
    c = np.zeros(N, np.float32)

    @tw.kernel
    def tf32_k(a, c, T: tw.Constant[int]):
        i = tw.bid(0)
        tw.store(c, i, tw.load(a, i, shape=T).astype(tw.tfloat32).astype(tw.float32))

    tw.launch(None, GRID, tf32_k, (a, c, T))
    x = a.astype(np.float64)
    quantum = 2.0 ** (np.floor(np.log2(np.abs(x))) - 10)
    want = (np.round(x / quantum) * quantum).astype(np.float32)  # np.round: half to even
    np.testing.assert_array_equal(c, want)
    assert c[0] == np.float32(1 + 2**-10) and c[1] == np.float32(1.0)


@pytest.mark.parametrize("src,dst", [("float32", "int32"), ("int32", "float32"), ("float16", "int16"),
                                     ("bfloat16", "uint16"), ("float64", "int64"), ("uint64", "float64"),
                                     ("float8_e4m3fn", "int8"), ("uint8", "float8_e5m2")])
def test_bitcast(backend, rng, src, dst):
    a = random_array(rng, N, np.float32).astype(npdt(src)) if "float" in src else random_array(rng, N, npdt(src))
    c = np.zeros(N, npdt(dst))

    @tw.kernel
    def bitcast_k(a, c, DT: tw.Constant[object], T: tw.Constant[int]):
        i = tw.bid(0)
        tw.store(c, i, tw.bitcast(tw.load(a, i, shape=T), DT))

    tw.launch(None, GRID, bitcast_k, (a, c, twdt(dst), T))
    np.testing.assert_array_equal(c.view(np.uint8), a.view(npdt(dst)).view(np.uint8))


def test_bitcast_width_mismatch_is_an_error(backend, rng):
    @tw.kernel
    def bad_bitcast(a, c):
        tw.store(c, 0, tw.bitcast(tw.load(a, 0, shape=4), tw.int16))

    with pytest.raises(tw.TileTypeError, match="width"):
        tw.launch(None, (1,), bad_bitcast, (np.ones(4, np.float32), np.zeros(4, np.int16)))


def test_store_float_into_int_array_needs_explicit_cast(backend, rng):
    a = random_array(rng, N, np.float32)
    with pytest.raises(tw.TileTypeError, match="astype") as e:
        tw.launch(None, GRID, binary_k, (a, a, np.zeros(N, np.int32), "add", tw.float32, T))
    assert e.value.loc[0] == __file__
