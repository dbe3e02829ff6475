"""`tw.compile` and what it exposes (IR text, code, specialisation cache, kernel hints), the IR verifier on
hand-built malformed IR, and the clean-up passes (fold, CSE, DCE) measured by op counts."""
import numpy as np
import pytest
from conftest import random_array

import tilewise as tw
from tilewise.ir import Block, Builder, Function, IRTypeError, TileType, print_function, scalar, verify
from tilewise.ir import dtypes as D
from tilewise.ir.passes import cse, dce, fold_constants, optimize
from tilewise.ir.types import ArrayType


@tw.kernel
def add(x, y, z, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(z, (i,), tw.load(x, (i,), (T,)) + tw.load(y, (i,), (T,)))


@tw.kernel
def scale(x, z, s, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(z, (i,), tw.load(x, (i,), (T,)) * s)


@tw.kernel
def scale_const(x, z, s: tw.Constant[float], T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(z, (i,), tw.load(x, (i,), (T,)) * s)


@tw.kernel(num_ctas=2, occupancy=tw.ByTarget(sm_100=2, default=1), opt_level=3)
def hinted(x, z, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(z, (i,), tw.exp(tw.load(x, (i,), (T,))))


def _arrays(rng, n=3, shape=(12,), dtype=np.float32):
    return [random_array(rng, shape, dtype) for _ in range(n)]


# ---- tw.compile -------------------------------------------------------------------------------------

def test_compile_reference_exposes_ir(rng):
    x, y, z = _arrays(rng)
    before = z.copy()
    c = tw.compile(add, (x, y, z, 4), target="reference")
    assert c.target == "reference" and "add" in repr(c)
    ir = c.ir
    assert ir.startswith("func @add(%x: array<float32, 1d, unit-stride>, %y: array<float32, 1d, unit-stride>, "
                         "%z: array<float32, 1d, unit-stride>)")
    for text in ("bid {axis=0}", "load %x", "load %y", "shape=(4,)", "binary", "fn='add'",
                 "tile<4xfloat32>", "store %z", "return"):
        assert text in ir, (text, ir)
    assert ir.count("load ") == 2 and ir.count("store ") == 1
    assert c.code is None and c.binary is None and c.resources == {}
    assert np.array_equal(z, before), "tw.compile must not run the kernel"


def test_unit_stride_is_a_specialisation(backend, rng):
    """Arrays whose innermost stride is one element and strided views compile apart (a backend may
    compile the unit stride in), and each gives NumPy's answer."""
    base = [random_array(rng, (2, 12), np.float32) for _ in range(3)]
    before = base[2].copy()
    unit = [b[1, 3:9].copy() for b in base] + [4]
    strided = [b[0, ::2] for b in base] + [4]  # innermost stride: two elements
    c_unit, c_strided = (tw.compile(add, args, target=backend) for args in (unit, strided))
    assert "unit-stride" in c_unit.ir and "unit-stride" not in c_strided.ir
    assert c_unit.function is not c_strided.function
    if backend == "cuda-emulated":  # the CUDA C++ has the unit stride as a literal
        assert ".stride[0]" not in c_unit.code and ".stride[0]" in c_strided.code
    for x, y, z, n in (unit, strided):
        tw.launch(None, (2,), add, (x, y, z, n))
        np.testing.assert_array_equal(z, x + y)
    np.testing.assert_array_equal(base[2][:, 1::2], before[:, 1::2])  # the view's neighbours are untouched
    np.testing.assert_array_equal(base[2][1], before[1])


def test_compile_default_target_is_the_host_backend(backend, rng):
    x, y, z = _arrays(rng)
    assert tw.compile(add, (x, y, z, 4)).target == backend


def test_compile_then_launch_agree(backend, rng):
    x, y, z = _arrays(rng)
    c = tw.compile(add, (x, y, z, 4), target=backend)
    tw.launch(None, (3,), add, (x, y, z, 4))
    np.testing.assert_array_equal(z, x + y)
    # the launch reused the specialisation that tw.compile built
    assert tw.compile(add, (x, y, z, 4), target=backend).function is c.function


def test_specialisation_cache(rng):
    x, y, z = _arrays(rng)
    c1 = tw.compile(add, (x, y, z, 4), target="reference")
    c2 = tw.compile(add, (*_arrays(rng), 4), target="reference")  # other arrays, same facts
    assert c2.function is c1.function and c2.executable is c1.executable
    c3 = tw.compile(add, (x, y, z, np.int64(4)), target="reference")  # same value, other spelling
    assert c3.function is c1.function
    c4 = tw.compile(add, (x, y, z, 2), target="reference")  # other Constant value
    assert c4.function is not c1.function and "shape=(2,)" in c4.ir
    xd, yd, zd = _arrays(rng, dtype=np.float64)  # other dtype
    c5 = tw.compile(add, (xd, yd, zd, 4), target="reference")
    assert c5.function is not c1.function and "float64" in c5.ir
    x2 = random_array(rng, (24,), np.float32)[::2]  # strided: another layout fact
    c6 = tw.compile(add, (x2, y, z, 4), target="reference")
    assert c6.function is not c1.function
    assert len({id(c.function) for c in (c1, c4, c5, c6)}) == 4


def test_runtime_scalars_share_a_specialisation(rng):
    x, z = _arrays(rng, 2)
    c1 = tw.compile(scale, (x, z, 2.0, 4), target="reference")
    c2 = tw.compile(scale, (x, z, -3.5, 4), target="reference")
    assert c1.function is c2.function
    assert "%s: tile<float32>" in c1.ir  # a runtime scalar parameter


def test_constant_float_specialises_by_value_not_spelling(backend, rng):
    x, z = random_array(rng, (12,), np.int32), random_array(rng, (12,), np.float32)
    c1 = tw.compile(scale_const, (x, z, 2, 4), target="reference")
    c2 = tw.compile(scale_const, (x, z, 2.0, 4), target="reference")
    assert c1.function is c2.function  # Constant[float] 2 is the float 2.0
    assert "float32" in c1.ir.split("binary")[1]  # int tile * float constant promotes to float
    tw.launch(None, (3,), scale_const, (x, z, 2, 4))
    np.testing.assert_allclose(z, x.astype(np.float64) * 2.0)


def test_constant_kinds_do_not_share_cache_entries():
    from tilewise.frontend.kernel import ConstSpec
    assert ConstSpec(1) != ConstSpec(1.0) and ConstSpec(1) != ConstSpec(True)
    assert ConstSpec(4) == ConstSpec(4) and hash(ConstSpec(4)) == hash(ConstSpec(4))


def test_kernel_hints_are_accepted(backend, rng):
    assert hinted.hints["num_ctas"] == 2 and hinted.hints["opt_level"] == 3
    occ = hinted.hints["occupancy"]
    assert occ.resolve("sm_100") == 2 and occ.resolve("sm_90") == 1
    x, z = _arrays(rng, 2)
    tw.launch(None, (3,), hinted, (x, z, 4))
    np.testing.assert_allclose(z, np.exp(x.astype(np.float64)), rtol=1e-6)
    assert "unary" in tw.compile(hinted, (x, z, 4), target="reference").ir


def test_compile_errors_are_tile_errors(rng):
    x, y, z = _arrays(rng)
    with pytest.raises(tw.TileLaunchError, match="@tw.kernel"):
        tw.compile(add.fn, (x, y, z, 4), target="reference")
    with pytest.raises(tw.TileLaunchError, match="unknown backend 'nosuch'"):
        tw.compile(add, (x, y, z, 4), target="nosuch")
    with pytest.raises(tw.TileLaunchError, match="takes 4 arguments"):
        tw.compile(add, (x, y, z), target="reference")


# ---- the IR verifier --------------------------------------------------------------------------------

F32 = TileType((4,), D.float32)
I32 = scalar(D.int32)


def _fn(params=(), names=()):
    fn = Function("t", list(params), list(names))
    return fn, Builder(fn.body)


def test_verifier_accepts_well_formed_ir():
    fn, b = _fn([ArrayType(D.float32, 1)], ["x"])
    i = b.one("bid", axis=0)
    t = b.one("load", [fn.params[0], i], shape=(4,), order=(0,), padding="zero")
    two = b.one("constant", value=2.0, shape=(4,), dtype=D.float32)
    b.emit("store", [fn.params[0], i, b.one("binary", [t, two], fn="mul")], order=(0,))
    b.emit("return", [])
    verify(fn)
    assert "binary" in print_function(fn)


def test_verifier_requires_return():
    fn, b = _fn()
    b.one("constant", value=1, shape=(), dtype=D.int32)
    with pytest.raises(IRTypeError, match="end with return"):
        verify(fn)


def test_verifier_rejects_use_before_definition():
    other, ob = _fn()
    foreign = ob.one("constant", value=1.0, shape=(4,), dtype=D.float32)
    fn, b = _fn()
    b.one("unary", [foreign], fn="exp")  # a value that this function never defines
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="used before definition"):
        verify(fn)


def test_verifier_rejects_results_that_break_the_rule():
    fn, b = _fn()
    c = b.one("constant", value=1.0, shape=(4,), dtype=D.float32)
    r = b.one("binary", [c, c], fn="add")
    r.type = TileType((8,), D.float32)  # tampered with after construction
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="binary: result types do not follow its rule"):
        verify(fn)


def test_verifier_rejects_operands_that_break_the_rule():
    fn, b = _fn()
    c = b.one("constant", value=1.0, shape=(4,), dtype=D.float32)
    i = b.one("constant", value=1, shape=(4,), dtype=D.int32)
    op = b.emit("binary", [c, c], fn="add")[0].op
    op.operands[1] = i  # float + int without a cast
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="operands differ"):
        verify(fn)


def test_builder_rejects_ill_typed_ops_immediately():
    fn, b = _fn()
    c = b.one("constant", value=1.0, shape=(4,), dtype=D.float32)
    d = b.one("constant", value=1.0, shape=(3,), dtype=D.float32)
    with pytest.raises(IRTypeError, match="operands differ"):
        b.one("binary", [c, d], fn="add")
    with pytest.raises(IRTypeError, match="unknown op"):
        b.one("frobnicate", [c])
    with pytest.raises(IRTypeError, match="changes the element count"):
        b.one("reshape", [c], shape=(3,))


def test_verifier_rejects_float_loop_bounds():
    fn, b = _fn()
    lo = b.one("constant", value=0.0, shape=(), dtype=D.float32)
    body = Block([lo.type])
    Builder(body).emit("yield", [])
    b.region_op("for", [lo, lo, lo], [], [body])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="bounds must be int scalars"):
        verify(fn)


def test_verifier_rejects_mismatched_carried_types():
    fn, b = _fn()
    lo, hi, step = (b.one("constant", value=v, shape=(), dtype=D.int32) for v in (0, 4, 1))
    init = b.one("constant", value=0.0, shape=(4,), dtype=D.float32)
    body = Block([I32, F32])
    bb = Builder(body)
    wrong = bb.one("cast", [body.args[1]], dtype=D.float16)
    bb.emit("yield", [wrong])
    b.region_op("for", [lo, hi, step, init], [F32], [body])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="for: carried types"):
        verify(fn)


def test_verifier_rejects_non_bool_conditions():
    fn, b = _fn()
    c = b.one("constant", value=1, shape=(), dtype=D.int32)
    then, other = Block(), Block()
    Builder(then).emit("yield", [])
    Builder(other).emit("yield", [])
    b.region_op("if", [c], [], [then, other])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="if: condition must be a bool scalar"):
        verify(fn)

    fn, b = _fn()
    cond, body = Block([I32]), Block([I32])
    Builder(cond).emit("yield", [cond.args[0]])  # an int, not a bool
    Builder(body).emit("yield", [body.args[0]])
    b.region_op("while", [b.one("constant", value=0, shape=(), dtype=D.int32)], [I32], [cond, body])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="while: condition must be a bool scalar"):
        verify(fn)


def test_verifier_rejects_if_branches_of_different_types():
    fn, b = _fn()
    c = b.one("constant", value=True, shape=(), dtype=D.bool_)
    then, other = Block(), Block()
    Builder(then).emit("yield", [Builder(then).one("constant", value=1.0, shape=(4,), dtype=D.float32)])
    Builder(other).emit("yield", [Builder(other).one("constant", value=1, shape=(4,), dtype=D.int32)])
    b.region_op("if", [c], [F32], [then, other])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="if: branches must yield the result types"):
        verify(fn)


def test_verifier_rejects_a_region_without_yield():
    fn, b = _fn()
    c = b.one("constant", value=True, shape=(), dtype=D.bool_)
    b.region_op("if", [c], [], [Block(), Block()])
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="region must end with yield"):
        verify(fn)


def test_verifier_rejects_regions_on_plain_ops():
    fn, b = _fn()
    c = b.one("constant", value=1.0, shape=(4,), dtype=D.float32)
    op = b.emit("unary", [c], fn="exp")[0].op
    op.regions = [Block()]
    b.emit("return", [])
    with pytest.raises(IRTypeError, match="exp|unary cannot have regions"):
        verify(fn)


# ---- passes -----------------------------------------------------------------------------------------

def _count(fn, name=None):
    return sum(1 for op in fn.walk() if name is None or op.name == name)


def test_fold_constants_folds_int_arithmetic():
    fn, b = _fn([ArrayType(D.int32, 1)], ["x"])
    three = b.one("constant", value=3, shape=(), dtype=D.int32)
    four = b.one("constant", value=4, shape=(), dtype=D.int32)
    s = b.one("binary", [three, four], fn="add")
    p = b.one("binary", [s, four], fn="mul")  # folds too, through the first fold
    big = b.one("constant", value=2**31 - 1, shape=(), dtype=D.int32)
    wrapped = b.one("binary", [big, b.one("constant", value=1, shape=(), dtype=D.int32)], fn="add")
    t = b.one("constant", value=0, shape=(4,), dtype=D.int32)
    tile = b.one("broadcast", [b.one("reshape", [p], shape=(1,))], shape=(4,))
    b.emit("store", [fn.params[0], wrapped, b.one("binary", [t, tile], fn="add")], order=(0,))
    b.emit("return", [])
    assert _count(fn, "binary") == 4
    fold_constants(fn)
    verify(fn)
    folded = [op for op in fn.walk() if op.name == "constant"]
    values = {op.attrs["value"] for op in folded}
    assert 28 in values and 7 in values
    assert -2**31 in values  # int32 wraps like the hardware
    assert _count(fn, "binary") == 1  # the tile add has a non-constant operand: kept
    before = _count(fn)
    dce(fn)
    verify(fn)
    assert _count(fn) < before  # 3, 4, 7 and the operands of the wrapped add are dead now


def test_fold_leaves_float_arithmetic_to_backends():
    fn, b = _fn([ArrayType(D.float32, 1)], ["x"])
    a = b.one("constant", value=0.1, shape=(), dtype=D.float32)
    s = b.one("binary", [a, a], fn="add")
    b.emit("store", [fn.params[0], b.one("constant", value=0, shape=(), dtype=D.int32),
                     b.one("reshape", [s], shape=(1,))], order=(0,))
    b.emit("return", [])
    fold_constants(fn)
    assert _count(fn, "binary") == 1


def test_cse_merges_identical_pure_ops_but_not_loads():
    fn, b = _fn([ArrayType(D.float32, 1)], ["x"])
    x = fn.params[0]
    i1 = b.one("bid", axis=0)
    i2 = b.one("bid", axis=0)
    l1 = b.one("load", [x, i1], shape=(4,), order=(0,), padding="zero")
    l2 = b.one("load", [x, i2], shape=(4,), order=(0,), padding="zero")
    e1 = b.one("unary", [l1], fn="exp")
    e2 = b.one("unary", [l1], fn="exp")
    s = b.one("binary", [e1, e2], fn="add")
    b.emit("store", [x, i1, b.one("binary", [s, l2], fn="add")], order=(0,))
    b.emit("return", [])
    assert (_count(fn, "bid"), _count(fn, "load"), _count(fn, "unary")) == (2, 2, 2)
    cse(fn)
    verify(fn)
    assert (_count(fn, "bid"), _count(fn, "load"), _count(fn, "unary")) == (1, 2, 1)
    add_op = next(op for op in fn.walk() if op.name == "binary")
    assert add_op.operands[0] is add_op.operands[1]  # exp(l1) + exp(l1) now reads one value twice


def test_cse_does_not_leak_values_out_of_regions():
    fn, b = _fn([ArrayType(D.float32, 1)], ["x"])
    c = b.one("constant", value=True, shape=(), dtype=D.bool_)
    then, other = Block(), Block()
    tb, eb = Builder(then), Builder(other)
    tb.emit("yield", [tb.one("constant", value=1.0, shape=(4,), dtype=D.float32)])
    eb.emit("yield", [eb.one("constant", value=2.0, shape=(4,), dtype=D.float32)])
    (r,) = b.region_op("if", [c], [F32], [then, other]).results
    again = b.one("constant", value=1.0, shape=(4,), dtype=D.float32)  # same as inside `then`
    b.emit("store", [fn.params[0], b.one("bid", axis=0), b.one("binary", [r, again], fn="add")], order=(0,))
    b.emit("return", [])
    cse(fn)
    verify(fn)  # `again` must not have been replaced by the value defined inside the branch


def test_dce_removes_dead_ops_and_loops_but_keeps_effects():
    fn, b = _fn([ArrayType(D.float32, 1)], ["x"])
    x = fn.params[0]
    i = b.one("bid", axis=0)
    t = b.one("load", [x, i], shape=(4,), order=(0,), padding="zero")
    b.one("unary", [t], fn="exp")  # unused
    lo, hi, step = (b.one("constant", value=v, shape=(), dtype=D.int32) for v in (0, 8, 1))
    body = Block([I32, F32])
    bb = Builder(body)
    bb.emit("yield", [bb.one("binary", [body.args[1], body.args[1]], fn="add")])
    b.region_op("for", [lo, hi, step, t], [F32], [body])  # a pure loop whose result is unused
    b.emit("printf", [i], fmt="%d\n")
    b.emit("store", [x, i, t], order=(0,))
    b.emit("return", [])
    dce(fn)
    verify(fn)
    names = [op.name for op in fn.body.ops]
    assert names == ["bid", "load", "printf", "store", "return"]


def test_optimize_shrinks_lowered_kernels(rng):
    """The front end's output for a kernel with redundant work is smaller after the passes."""
    x, z = _arrays(rng, 2)
    c = tw.compile(redundant, (x, z, 4), target="reference")
    fn = c.function
    assert _count(fn, "unary") == 1  # exp(t) computed once
    assert _count(fn, "bid") == 1
    assert "array_dim" not in c.ir  # shapes read at entry but never used are dropped
    assert optimize(fn) is fn and _count(fn) == len(list(fn.walk()))  # idempotent, still valid
    verify(fn)


@tw.kernel
def redundant(x, z, T: tw.Constant[int]):
    t = tw.load(x, (tw.bid(0),), (T,))
    unused = tw.sin(t) * 3  # noqa: F841
    tw.store(z, (tw.bid(0),), tw.exp(t) + tw.exp(t) * (2 + 3))


def test_optimize_keeps_results(backend, rng):
    x, z = _arrays(rng, 2)
    tw.launch(None, (3,), redundant, (x, z, 4))
    e = np.exp(x.astype(np.float64))
    np.testing.assert_allclose(z, e + e * 5, rtol=1e-5)
