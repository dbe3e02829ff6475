"""The error experience: every malformed kernel and bad launch is a TileError of the right class that
points at the offending source line, says what to do instead, leaks no internal traceback and leaves
the output arrays untouched.

Each compile-error kernel marks its offending line with `# <-`; the test finds that line's number
from the source, so the cases stay correct when this file is edited."""
import inspect
import math
import os
import re
import traceback
from dataclasses import dataclass

import numpy as np
import pytest
from conftest import random_array

import tilewise as tw
from tilewise.errors import TileError, TileLaunchError, TileNameError, TileSyntaxError, TileTypeError, TileValueError

GLOBAL_ARRAY = np.arange(8, dtype=np.float32)
SOME_LIST = [1, 2, 3]
MARK = "# <-"


def _helper_with_global():
    global SOME_LIST  # <-
    return SOME_LIST


# ---- malformed kernels ------------------------------------------------------------------------------
# Conventions: x is a float32 input of shape (8,), y a float32 output of shape (8,), n a runtime int.

@tw.kernel
def k_undefined(x, y):
    t = tw.load(x, (tw.bid(0),), (4,))
    tw.store(y, (tw.bid(0),), t + undefined_thing)  # noqa: F821 # <-


@tw.kernel
def k_break(x, y, n):
    t = tw.load(x, (tw.bid(0),), (4,))
    for _ in range(n):
        t = t + 1
        break  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_continue(x, y, n):
    t = tw.load(x, (tw.bid(0),), (4,))
    for _ in range(n):
        continue  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_try(x, y):
    try:  # <-
        t = tw.load(x, (tw.bid(0),), (4,))
    except Exception:
        t = tw.zeros((4,), tw.float32)
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_with(x, y):
    t = tw.load(x, (tw.bid(0),), (4,))
    with open(os.devnull):  # <-
        pass
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_nested_def(x, y):
    def inner(v):  # <-
        return v + 1
    tw.store(y, (tw.bid(0),), inner(tw.load(x, (tw.bid(0),), (4,))))


@tw.kernel
def k_lambda(x, y):
    inc = lambda v: v + 1  # <-
    tw.store(y, (tw.bid(0),), inc(tw.load(x, (tw.bid(0),), (4,))))


@tw.kernel
def k_global(x, y):
    global SOME_LIST  # <-
    tw.store(y, (tw.bid(0),), tw.load(x, (tw.bid(0),), (4,)))


@tw.kernel
def k_global_in_helper(x, y):
    tw.store(y, (tw.bid(0),), tw.load(x, (tw.bid(0),), (4,)) + _helper_with_global()[0])


@tw.kernel
def k_setitem(x, y):
    t = tw.load(x, (tw.bid(0),), (4,))
    t[0] = 1  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_index_array(x, y):
    v = x[0]  # <-
    tw.store(y, (tw.bid(0),), tw.full((4,), v, tw.float32))


@tw.kernel
def k_runtime_shape(x, y, n):
    t = tw.load(x, (0,), (n,))  # <-
    tw.store(y, (0,), t)


@tw.kernel
def k_load_shape_rank(x, y):
    t = tw.load(x, (tw.bid(0),), (4, 4))  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_load_index_rank(x, y):
    t = tw.load(x, (tw.bid(0), 0), (4,))  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_padding_str(x, y):
    t = tw.load(x, (tw.bid(0),), (4,), padding_mode="zero")  # <-
    tw.store(y, (tw.bid(0),), t)


@tw.kernel
def k_order(x2, y2):
    t = tw.load(x2, (0, 0), (2, 2), order=(0, 0))  # <-
    tw.store(y2, (0, 0), t)


@tw.kernel
def k_store_float_to_int(x, yi):
    t = tw.load(x, (tw.bid(0),), (4,))
    tw.store(yi, (tw.bid(0),), t * 2)  # <-


@tw.kernel
def k_broadcast(x, y):
    a = tw.load(x, (0,), (4,))
    b = tw.load(x, (0,), (3,))
    tw.store(y, (0,), a + b)  # <-


@tw.kernel
def k_matmul(x2, y2):
    a = tw.load(x2, (0, 0), (2, 4))
    tw.store(y2, (0, 0), a @ a)  # <-


@tw.kernel
def k_mma(x2, y2):
    a = tw.load(x2, (0, 0), (2, 2))
    acc = tw.zeros((2, 4), tw.float32)
    tw.store(y2, (0, 0), tw.mma(a, a, acc))  # <-


@tw.kernel
def k_reduce_axis(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), tw.sum(t, axis=2, keepdims=True))  # <-


@tw.kernel
def k_reshape(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), t.reshape((3,)))  # <-


@tw.kernel
def k_bitcast(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), tw.bitcast(t, tw.int16).astype(tw.float32))  # <-


@tw.kernel
def k_loop_shape(x, y, n):
    acc = tw.zeros((4,), tw.float32)
    for _ in range(n):
        acc = tw.zeros((8,), tw.float32)  # <-
    tw.store(y, (0,), acc)


@tw.kernel
def k_loop_dtype(x, y, n):
    acc = tw.zeros((4,), tw.float32)
    for i in range(n):
        t = tw.load(x, (i,), (4,))
        acc = (acc + t).astype(tw.float16)  # <-
    tw.store(y, (0,), acc.astype(tw.float32))


@tw.kernel
def k_if_only_branch(x, y, n):
    t = tw.load(x, (0,), (4,))
    if n > 0:
        v = t * 2
    tw.store(y, (0,), v)  # <-


@tw.kernel
def k_loop_defined(x, y, n):
    for i in range(n):
        v = tw.load(x, (i,), (4,))
    tw.store(y, (0,), v)  # <-


@tw.kernel
def k_while_true(x, y):
    t = tw.load(x, (0,), (4,))
    while True:  # <-
        t = t + 1
    tw.store(y, (0,), t)


@tw.kernel
def k_for_list(x, y):
    t = tw.load(x, (0,), (4,))
    for v in SOME_LIST:  # <-
        t = t + v
    tw.store(y, (0,), t)


@tw.kernel
def k_for_tuple(x, y):
    t = tw.load(x, (0,), (4,))
    for v in (1.0, 2.0):  # <-
        t = t + v
    tw.store(y, (0,), t)


@tw.kernel
def k_range_float(x, y):
    t = tw.load(x, (0,), (4,))
    for _ in range(0, 2.5):  # <-
        t = t + 1
    tw.store(y, (0,), t)


@tw.kernel
def k_arraylist_runtime(xs, y, n):
    acc = tw.zeros((4,), tw.float32)
    for g in range(n):
        acc = acc + tw.load(xs[g], (0,), (4,))  # <-
    tw.store(y, (0,), acc)


@tw.kernel
def k_open(x, y):
    f = open(os.devnull)  # <-
    tw.store(y, (0,), tw.load(x, (0,), (4,)) + len(f.read()))


@tw.kernel
def k_eval(x, y):
    v = eval("1 + 1")  # <-
    tw.store(y, (0,), tw.load(x, (0,), (4,)) + v)


@tw.kernel
def k_global_array(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), t + GLOBAL_ARRAY[0])  # <-


@tw.kernel
def k_return_value(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), t)
    return t  # <-


@tw.kernel
def k_unpack_count(x, y):
    a, b = (1, 2, 3)  # <-
    tw.store(y, (0,), tw.load(x, (0,), (4,)) + a + b)


@tw.kernel
def k_unpack_tile(x, y):
    a, b = tw.load(x, (0,), (2,))  # <-
    tw.store(y, (0,), tw.full((4,), a + b, tw.float32))


@tw.kernel
def k_fstring(x, y):
    t = tw.load(x, (0,), (4,))
    msg = f"value {t}"  # <-
    tw.printf(msg)
    tw.store(y, (0,), t)


@tw.kernel
def k_if_tile(x, y):
    t = tw.load(x, (0,), (4,))
    if t > 0:  # <-
        t = t * 2
    tw.store(y, (0,), t)


@tw.kernel
def k_too_many_indices(x, y2):
    t = tw.load(x, (0,), (4,))
    tw.store(y2, (0, 0), t[:, :, None])  # <-


@tw.kernel
def k_listcomp(x, y):
    vals = [i * 2 for i in range(4)]  # <-
    tw.store(y, (0,), tw.load(x, (0,), (4,)) + vals[0])


@tw.kernel
def k_tile_attr(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), t.exp())  # <-


@tw.kernel
def k_builtin_bad_kwarg(x, y):
    t = tw.load(x, (0,), (4,), mode=1)  # <-
    tw.store(y, (0,), t)


@tw.kernel
def k_raise(x, y):
    raise ValueError("nope")  # <-


@tw.kernel
def k_del(x, y):
    t = tw.load(x, (0,), (4,))
    del t  # <-
    tw.store(y, (0,), tw.zeros((4,), tw.float32))


@tw.kernel
def k_return_in_loop(x, y, n):
    for _ in range(n):
        return  # <-
    tw.store(y, (0,), tw.zeros((4,), tw.float32))


@tw.kernel
def k_dtype_arg(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), t.astype("float32x"))  # <-


@tw.kernel
def k_assert_const(x, y):
    assert 1 == 2, "sizes must agree"  # <-
    tw.store(y, (0,), tw.load(x, (0,), (4,)))


@tw.kernel
def k_aug_subscript(x, y):
    t = tw.load(x, (0,), (4,))
    t[1] += 1.0  # <-
    tw.store(y, (0,), t)


@tw.kernel
def k_math_runtime(x, y):
    t = tw.load(x, (0,), (4,))
    tw.store(y, (0,), math.exp(t))  # <-


@tw.kernel
def k_scalar_as_array(x, y):
    tw.store(y, (0,), tw.load(x, (0,), (4,)))  # <-


def _io(rng):
    return {"x": random_array(rng, (8,), np.float32), "y": random_array(rng, (8,), np.float32)}


def _io2(rng):
    return {"x2": random_array(rng, (4, 4), np.float32), "y2": random_array(rng, (4, 4), np.float32)}


def _io_int(rng):
    return {"x": random_array(rng, (8,), np.float32), "yi": random_array(rng, (8,), np.int32)}


def _io_1to2(rng):
    return {"x": random_array(rng, (8,), np.float32), "y2": random_array(rng, (4, 4), np.float32)}


def _io_scalar_x(rng):
    return {"x": 3.0, "y": random_array(rng, (8,), np.float32)}


def _io_list(rng):
    return {"xs": [random_array(rng, (4,), np.float32) for _ in range(2)],
            "y": random_array(rng, (8,), np.float32)}


@dataclass
class Case:
    kernel: object
    cls: type
    hint: str            # regex the message must match: the "do this instead" part
    make: object = _io
    extra: tuple = ()    # trailing scalar arguments
    mark_in: object = None  # the function holding the marked line, when it is not the kernel

    def __str__(self):
        return self.kernel.__name__


COMPILE_CASES = [
    Case(k_undefined, TileNameError, r"'undefined_thing' is not defined.*(argument|define)"),
    Case(k_break, TileSyntaxError, r"'break'.*while loop", extra=(2,)),
    Case(k_continue, TileSyntaxError, r"'continue'.*if", extra=(2,)),
    Case(k_try, TileSyntaxError, r"'try'.*remove"),
    Case(k_with, TileSyntaxError, r"'with'.*"),
    Case(k_nested_def, TileSyntaxError, r"module level"),
    Case(k_lambda, TileSyntaxError, r"lambda.*module level"),
    Case(k_global, TileSyntaxError, r"'global'.*argument"),
    Case(k_global_in_helper, TileSyntaxError, r"'global'.*argument", mark_in=_helper_with_global),
    Case(k_setitem, TileSyntaxError, r"tw\.where"),
    Case(k_index_array, TileSyntaxError, r"tw\.load"),
    Case(k_runtime_shape, TileTypeError, r"compile-time.*tw\.Constant", extra=(4,)),
    Case(k_load_shape_rank, TileValueError, r"rank 2.*1 dimension.*one tile dimension per array dimension"),
    Case(k_load_index_rank, TileValueError, r"2 entries.*1 dimension.*one index per array dimension"),
    Case(k_padding_str, TileTypeError, r"tw\.PaddingMode\.ZERO"),
    Case(k_order, TileValueError, r"permutation", make=_io2),
    Case(k_store_float_to_int, TileTypeError, r"\.astype\(", make=_io_int),
    Case(k_broadcast, TileTypeError, r"cannot be broadcast.*(reshape|broadcast_to)"),
    Case(k_matmul, TileTypeError, r"inner dimensions.*(transpose|match)", make=_io2),
    Case(k_mma, TileTypeError, r"accumulator.*\(2, 4\).*\(2, 2\)", make=_io2),
    Case(k_reduce_axis, TileValueError, r"axis 2.*rank 1.*-1.*0"),
    Case(k_reshape, TileValueError, r"4 elements.*same number"),
    Case(k_bitcast, TileTypeError, r"width.*astype"),
    Case(k_loop_shape, TileTypeError, r"'acc' changes type.*tw\.zeros", extra=(2,)),
    Case(k_loop_dtype, TileTypeError, r"'acc' changes type.*float16", extra=(2,)),
    Case(k_if_only_branch, TileNameError, r"'v'.*only.*if.*before", extra=(2,)),
    Case(k_loop_defined, TileNameError, r"'v'.*inside.*loop.*before the loop", extra=(2,)),
    Case(k_while_true, TileSyntaxError, r"runtime condition"),
    Case(k_for_list, TileSyntaxError, r"range\("),
    Case(k_for_tuple, TileSyntaxError, r"range\(len\("),
    Case(k_range_float, TileTypeError, r"range\(\) needs integers"),
    Case(k_arraylist_runtime, TileTypeError, r"compile-time index.*constant range", make=_io_list, extra=(2,)),
    Case(k_open, TileTypeError, r"open\(\) cannot be called.*tw\."),
    Case(k_eval, TileTypeError, r"eval\(\) cannot be called.*tw\."),
    Case(k_global_array, TileTypeError, r"GLOBAL_ARRAY.*pass arrays to the kernel as arguments"),
    Case(k_return_value, TileSyntaxError, r"tw\.store"),
    Case(k_unpack_count, TileValueError, r"3 values into 2 names"),
    Case(k_unpack_tile, TileTypeError, r"cannot unpack a tile.*tw\.extract"),
    Case(k_fstring, TileSyntaxError, r"print\(\)"),
    Case(k_if_tile, TileTypeError, r"scalar condition.*tw\.where"),
    Case(k_too_many_indices, TileValueError, r"too many indices.*\(4,\)", make=_io_1to2),
    Case(k_listcomp, TileSyntaxError, r"list comprehensions.*tuple"),
    Case(k_tile_attr, TileTypeError, r"no attribute 'exp'.*tw\.exp"),
    Case(k_builtin_bad_kwarg, TileTypeError, r"load\(\).*mode"),
    Case(k_raise, TileSyntaxError, r"'raise'.*tw\.assert_"),
    Case(k_del, TileSyntaxError, r"'del'"),
    Case(k_return_in_loop, TileSyntaxError, r"return inside a loop", extra=(2,)),
    Case(k_dtype_arg, TileTypeError, r"dtype.*tw\.float32"),
    Case(k_assert_const, TileValueError, r"sizes must agree"),
    Case(k_aug_subscript, TileSyntaxError, r"'\+='.*tw\.where"),
    Case(k_math_runtime, TileTypeError, r"exp\(\) runs only on compile-time values.*tw\.exp"),
    Case(k_scalar_as_array, TileTypeError, r"array parameter, got a scalar.*pass an array", make=_io_scalar_x),
]


def _marked_line(fn):
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, text in enumerate(lines) if text.rstrip().endswith(MARK)]
    assert len(hits) == 1, f"{fn.__name__} must mark exactly one line"
    return hits[0]


def _arrays(outputs):
    return [a for v in outputs.values() for a in (v if isinstance(v, list) else [v]) if isinstance(a, np.ndarray)]


def _snapshot(outputs):
    return [a.copy() for a in _arrays(outputs)]


def _same(outputs, before):
    after = _arrays(outputs)
    return all(np.array_equal(a, b, equal_nan=True) for a, b in zip(after, before))


def _no_internal_frames(err):
    """The traceback a user sees must not walk through the compiler's internals (the entry point that
    re-raises the error, Kernel.lower, is the one compiler frame left)."""
    frames = [f.filename for f in traceback.extract_tb(err.__traceback__)]
    internal = [f for f in frames if re.search(r"tilewise[/\\](frontend[/\\](?!kernel\.py)|ir[/\\])", f)]
    assert internal == [], f"internal frames leaked: {internal}"
    assert err.__cause__ is None and err.__suppress_context__


def _check_location(err, fn):
    line = _marked_line(fn)
    file = inspect.getsourcefile(fn)
    assert err.loc is not None, f"no location: {err}"
    assert os.path.samefile(err.loc[0], file)
    assert err.loc[1] == line, f"reported line {err.loc[1]}, offending line {line}: {err}"
    text = str(err)
    assert text.startswith(f"{err.loc[0]}:{line}:{err.loc[2] + 1}: ")
    src_line = inspect.getsourcelines(fn)[0][line - inspect.getsourcelines(fn)[1]].strip()
    shown = text.splitlines()
    assert shown[1].strip() == src_line and shown[2].strip() == "^"
    assert len(shown[2]) - 4 <= len(shown[1]) - 4  # the caret sits inside the line


@pytest.mark.parametrize("case", COMPILE_CASES, ids=str)
def test_compile_error(case, backend, rng):
    io = case.make(rng)
    before = _snapshot(io)
    args = tuple(io.values()) + case.extra
    with pytest.raises(TileError) as info:
        tw.launch(None, (2,), case.kernel, args)
    err = info.value
    assert type(err) is case.cls, f"{type(err).__name__}: {err}"
    _check_location(err, case.mark_in or case.kernel.fn)
    assert re.search(case.hint, err.message, re.S), err.message
    assert "internal error" not in err.message
    _no_internal_frames(err)
    assert _same(io, before), "a failed compile touched the outputs"


@pytest.mark.parametrize("case", COMPILE_CASES[:6], ids=str)
def test_compile_error_from_tw_compile(case):
    """tw.compile reports the same error as a launch, and the failure is not cached as a success."""
    io = case.make(np.random.default_rng(0))
    for _ in range(2):
        with pytest.raises(case.cls) as info:
            tw.compile(case.kernel, tuple(io.values()) + case.extra, target="reference")
        assert info.value.loc[1] == _marked_line(case.mark_in or case.kernel.fn)


def test_multiline_call_points_at_its_first_line(backend, rng):
    @tw.kernel
    def k(x, y):
        t = tw.load(x, (0,),  # <-
                    (4,), padding_mode=3)
        tw.store(y, (0,), t)

    io = _io(rng)
    with pytest.raises(TileTypeError) as info:
        tw.launch(None, 1, k, tuple(io.values()))
    assert info.value.loc[1] == _marked_line(k.fn)


def test_compiler_bug_still_names_the_line(backend, rng, monkeypatch):
    """An exception that is not a TileError (a compiler bug) becomes a TileError at the user's line and
    keeps its cause, so the report shows where the compiler failed."""
    from tilewise.frontend import builtins as B

    def broken(b, x, **kwargs):
        raise KeyError("boom")

    monkeypatch.setitem(B.BUILTINS, tw.exp, broken)

    @tw.kernel
    def k(x, y):
        tw.store(y, (0,), tw.exp(tw.load(x, (0,), (4,))))  # <-

    io = _io(rng)
    before = _snapshot(io)
    with pytest.raises(TileError) as info:
        tw.launch(None, 1, k, tuple(io.values()))
    assert type(info.value) is tw.TileInternalError  # cuTile's class for compiler bugs
    assert info.value.internal and "internal compiler error" in info.value.message and "report" in info.value.message
    assert info.value.loc[1] == _marked_line(k.fn)
    assert isinstance(info.value.__cause__, KeyError)
    assert _same(io, before)


# ---- misuse outside kernels ------------------------------------------------------------------------

def test_calling_a_kernel_directly(rng):
    io = _io(rng)
    with pytest.raises(TileError, match=r"tw\.launch\(stream, grid, k_undefined, args\)"):
        k_undefined(*io.values())


def test_builtin_outside_kernel(rng):
    x = random_array(rng, (8,), np.float32)
    with pytest.raises(TileError, match=r"inside a @tw\.kernel"):
        tw.load(x, (0,), (4,))
    with pytest.raises(TileError, match=r"inside a @tw\.kernel"):
        tw.exp(1.0)
    assert tw.cdiv(7, 2) == 4  # the few host-usable functions still work


def test_kernel_decorator_on_non_function():
    with pytest.raises(TileTypeError, match="decorates a function"):
        tw.kernel(42)


# ---- bad launches -----------------------------------------------------------------------------------

@tw.kernel
def k_copy(x, y):
    tw.store(y, (tw.bid(0),), tw.load(x, (tw.bid(0),), (4,)))


@tw.kernel
def k_copy_const(x, y, T: tw.Constant[int]):
    tw.store(y, (tw.bid(0),), tw.load(x, (tw.bid(0),), (T,)))


class _FakeCudaArray:
    """Only the CUDA array interface: a device array from a library tilewise cannot read on the host."""

    def __init__(self):
        self.__cuda_array_interface__ = {"shape": (8,), "typestr": "<f4", "data": (0, False), "version": 3}


def _readonly(rng):
    a = random_array(rng, (8,), np.float32)
    a.flags.writeable = False
    return a


# (name, kernel, args from (x, y, rng), grid, message regex that names the fix)
LAUNCH_CASES = [
    ("arg_count", k_copy, lambda x, y, r: (x, y, x), (2,), r"takes 2 arguments \(x, y\), got 3"),
    ("arg_count_few", k_copy, lambda x, y, r: (x,), (2,), r"takes 2 arguments \(x, y\), got 1"),
    ("args_not_tuple", k_copy, lambda x, y, r: x, (2,), r"must be a tuple"),
    ("list_of_numbers", k_copy, lambda x, y, r: ([1.0, 2.0], y), (2,), r"np\.asarray"),
    ("object_array", k_copy, lambda x, y, r: (np.array([1, "a"], dtype=object), y), (2,),
     r"object.*float32"),
    ("complex_array", k_copy, lambda x, y, r: (x.astype(np.complex64), y), (2,), r"complex64.*float32"),
    ("string_arg", k_copy, lambda x, y, r: ("abc", y), (2,), r"str.*arrays, numbers"),
    ("empty_grid", k_copy, lambda x, y, r: (x, y), (0,), r">= 1"),
    ("negative_grid", k_copy, lambda x, y, r: (x, y), (2, -1), r">= 1"),
    ("grid_4d", k_copy, lambda x, y, r: (x, y), (1, 1, 1, 1), r"1 to 3 ints"),
    ("float_grid", k_copy, lambda x, y, r: (x, y), (2.0,), r"ints.*tw\.cdiv|int\("),
    ("float_grid_scalar", k_copy, lambda x, y, r: (x, y), 2.0, r"1 to 3 ints"),
    ("constant_float", k_copy_const, lambda x, y, r: (x, y, 4.0), (2,), r"Constant\[int\].*pass an int"),
    ("constant_str", k_copy_const, lambda x, y, r: (x, y, "4"), (2,), r"Constant\[int\].*pass an int"),
    ("constant_unhashable", k_copy_const, lambda x, y, r: (x, y, [4]), (2,), r"hashable.*int, float, bool"),
    ("read_only_output", k_copy, lambda x, y, r: (x, _readonly(r)), (2,), r"read-only.*copy"),
    ("cuda_array", k_copy, lambda x, y, r: (_FakeCudaArray(), y), (2,), r"CUDA driver.*on the host"),
    ("empty_list", k_copy, lambda x, y, r: ([], y), (2,), r"empty"),
]


@pytest.mark.parametrize("name,kernel,make_args,grid,hint", LAUNCH_CASES, ids=[c[0] for c in LAUNCH_CASES])
def test_launch_error(name, kernel, make_args, grid, hint, backend, rng):
    x, y = random_array(rng, (8,), np.float32), random_array(rng, (8,), np.float32)
    args = make_args(x, y, rng)
    outs = [a for a in (args if isinstance(args, tuple) else (args,)) if isinstance(a, np.ndarray)] + [y]
    before = [a.copy() for a in outs]
    with pytest.raises(TileError) as info:
        tw.launch(None, grid, kernel, args)
    err = info.value
    assert type(err) is TileLaunchError, f"{type(err).__name__}: {err}"
    assert re.search(hint, err.message, re.S), err.message
    assert err.__cause__ is None
    _no_internal_frames_beyond_runtime(err)
    assert all(np.array_equal(a, b) for a, b in zip(outs, before)), "a failed launch touched an array"


def _no_internal_frames_beyond_runtime(err):
    frames = [f.filename for f in traceback.extract_tb(err.__traceback__)]
    assert not any(re.search(r"tilewise[/\\](frontend|ir|backends)[/\\]", f) for f in frames), frames


@pytest.mark.parametrize("target", [42, k_copy.fn, "k_copy"])
def test_launch_non_kernel(target, backend, rng):
    x, y = random_array(rng, (8,), np.float32), random_array(rng, (8,), np.float32)
    before = y.copy()
    with pytest.raises(TileLaunchError, match=r"@tw\.kernel"):
        tw.launch(None, (2,), target, (x, y))
    assert np.array_equal(y, before)


def test_good_launch_after_errors(backend, rng):
    """Errors leave no bad state behind: the same kernel then runs correctly."""
    x, y = random_array(rng, (8,), np.float32), random_array(rng, (8,), np.float32)
    with pytest.raises(TileLaunchError):
        tw.launch(None, (2,), k_copy_const, (x, y, 4.5))
    tw.launch(None, (2,), k_copy_const, (x, y, 4))
    np.testing.assert_array_equal(y, x)
