"""No depth limit in the compiler: chains of thousands of element-wise ops (what an unrolled
`tw.static_iter` loop or generated code makes) compile and run on every backend, and a helper that
calls itself is a TileError at the call instead of Python's RecursionError.

The code generators walk fused chains with worklists and cut a chain past a depth (cpu: 256 ops, cuda:
128) into a tile of its own, so 4096-op chains compile in about a second or two (docs/semantics.md,
Limits)."""
import inspect

import numpy as np
import pytest

import tilewise as tw
from tilewise.backends.cpu import fusion as cpu_fusion
from tilewise.backends.cuda import fusion as cuda_fusion
from tilewise.errors import TileUnsupportedError

DEPTH = 4096
MARK = "# <-"


def _ops(kernel, args):
    """How many ops the specialised IR has (the chains below are meant to be at least DEPTH long)."""
    return sum(1 for _ in tw.compile(kernel, args, target="reference").function.walk())


# ---- chains ---------------------------------------------------------------------------------------

@tw.kernel
def add_chain(x, y, NN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(16,))
    for _ in tw.static_iter(range(NN)):
        t = t + 1.0
    tw.store(y, index=(tw.bid(0),), tile=t)


def test_4096_adds_in_one_chain(backend, rng):
    x = (rng.standard_normal(40) * 3).astype(np.float32)  # 40: the last block's tile is partial
    y = np.zeros_like(x)
    tw.launch(None, (3,), add_chain, (x, y, DEPTH))
    want = x.copy()
    for _ in range(DEPTH):  # float32 additions, each rounded: bit-exact on every backend
        want = want + np.float32(1.0)
    np.testing.assert_array_equal(y, want)


@tw.kernel
def mixed_chain(x, r, y, NN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(8, 16))
    row = tw.load(r, index=(0,), shape=(16,))
    for s in tw.static_iter(range(NN)):
        if s % 4 == 0:
            t = t * 0.5 + row
        elif s % 64 == 1:  # a mathlib function is tens of LLVM instructions: a few keep the cpu compile short
            t = tw.sin(t)
        elif s % 4 == 1:
            t = -(t * 0.875)
        elif s % 4 == 2:
            t = tw.sqrt(tw.abs(t) + 1.0)
        else:
            t = tw.maximum(t, -t) * 0.75 - 0.25
    tw.store(y, index=(tw.bid(0), 0), tile=t)


def _mixed_reference(x, r, n):
    t = x.astype(np.float64)
    for s in range(n):
        t = [lambda t: t * 0.5 + r, np.sin if s % 64 == 1 else lambda t: -(t * 0.875),
             lambda t: np.sqrt(np.abs(t) + 1.0), lambda t: np.maximum(t, -t) * 0.75 - 0.25][s % 4](t)
    return t


def test_4096_mixed_unary_and_binary_ops_with_a_broadcast(backend, rng):
    """Every step contracts (|derivative| < 1), so each op's last-ulp rounding does not grow: the
    float32 result stays within a few ulp of the float64 computation however long the chain."""
    n = DEPTH * 4 // 10 + 4  # ten ops per four steps
    x = (rng.standard_normal((16, 16)) * 4).astype(np.float32)
    r = rng.standard_normal(16).astype(np.float32)
    y = np.zeros_like(x)
    assert _ops(mixed_chain, (x, r, y, n)) >= DEPTH
    tw.launch(None, (2,), mixed_chain, (x, r, y, n))
    np.testing.assert_allclose(y, _mixed_reference(x, r.astype(np.float64), n), rtol=2e-6, atol=2e-6)


@tw.kernel
def chain_into_reductions(x, s, m, NN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0), 0), shape=(8, 16))
    for k in tw.static_iter(range(NN)):
        if k % 3 == 0:
            t = tw.abs(t - 3.0) + 0.5
        elif k % 3 == 1:
            t = t * 2.0 - 1.0
        else:
            t = tw.minimum(t, 40.0) - 0.5
    tw.store(s, index=(tw.bid(0),), tile=tw.sum(t, axis=1))
    tw.store(m, index=(tw.bid(0),), tile=tw.max(t, axis=1))


def test_4096_op_chain_feeding_reductions(backend, rng):
    """Half-integers below 2^20: every step is exact, so the sums are too, in any order."""
    n = DEPTH * 3 // 7 + 3  # seven ops per three steps
    x = rng.integers(-16, 16, size=(16, 16)).astype(np.float32) / 2
    s, m = np.zeros(16, np.float32), np.zeros(16, np.float32)
    assert _ops(chain_into_reductions, (x, s, m, n)) >= DEPTH
    tw.launch(None, (2,), chain_into_reductions, (x, s, m, n))
    t = x.astype(np.float64)
    for k in range(n):
        t = [lambda t: np.abs(t - 3.0) + 0.5, lambda t: t * 2.0 - 1.0, lambda t: np.minimum(t, 40.0) - 0.5][k % 3](t)
    np.testing.assert_array_equal(s, t.sum(axis=1))
    np.testing.assert_array_equal(m, t.max(axis=1))


@tw.kernel
def where_cast_chain(x, y, NN: tw.Constant[int]):
    t = tw.load(x, index=(tw.bid(0),), shape=(32,))
    for _ in tw.static_iter(range(NN)):
        odd = tw.astype(t & 1, tw.bool_)
        t = tw.where(odd, t * 3 + 1, t // 2)
        t = tw.astype(tw.astype(t, tw.float64), tw.int32)
    tw.store(y, index=(tw.bid(0),), tile=t)


def test_4096_op_chain_of_wheres_and_casts(backend, rng):
    n = DEPTH // 7 + 1  # seven ops a step: and, cast, mul, add, floordiv, where, two casts
    x = rng.integers(1, 10**6, size=64).astype(np.int32)
    y = np.zeros_like(x)
    assert _ops(where_cast_chain, (x, y, n)) >= DEPTH
    tw.launch(None, (2,), where_cast_chain, (x, y, n))
    want = x.astype(np.int64)
    for _ in range(n):
        want = np.where(want & 1, want * 3 + 1, want // 2)
    np.testing.assert_array_equal(y, want.astype(np.int32))


@tw.kernel
def scalar_chain(x, y, NN: tw.Constant[int]):
    a = tw.sum(tw.load(x, index=(0,), shape=(8,)))
    for _ in tw.static_iter(range(NN)):
        a = (a * 5 + 3) % 1000
    tw.store(y, index=(0,), tile=tw.full((1,), a, dtype=tw.int32))


def test_4096_op_chain_of_scalars(backend):
    x, y = np.arange(8, dtype=np.int32), np.zeros(1, np.int32)
    tw.launch(None, (1,), scalar_chain, (x, y, DEPTH // 3))
    want = int(x.sum())
    for _ in range(DEPTH // 3):
        want = (want * 5 + 3) % 1000
    assert y[0] == want


def test_4096_op_chains_compile_for_sm_90():
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    x = np.zeros((16, 16), np.float32)
    for kernel, args in [(add_chain, (x[0], x[1], DEPTH)),
                         (mixed_chain, (x, x[0], x, DEPTH * 4 // 10 + 4)),
                         (where_cast_chain, (np.zeros(64, np.int32), np.zeros(64, np.int32), DEPTH // 7 + 1))]:
        c = tw.compile(kernel, args, target="cuda:sm_90")
        assert c.binary[:4] == b"\x7fELF"


def test_short_chains_are_fused_whole_and_long_ones_cut_every_max_depth_ops():
    """A chain a little shorter than a backend's MAX_DEPTH is fused whole (its code is what it was
    before chains were cut); one three times as long is cut about every MAX_DEPTH ops."""
    x, y = np.zeros(16, np.float32), np.zeros(16, np.float32)

    def unfused(n):
        fn = tw.compile(add_chain, (x, y, n), target="reference").function
        adds = [op.result.id for op in fn.walk() if op.name == "binary"]
        inline, (inlined, cuts) = cuda_fusion.inline_map(fn), cpu_fusion.plan(fn)
        assert {a for a in adds if a not in inlined} == cuts
        return sum(a not in inline for a in adds), len(cuts)

    assert unfused(cuda_fusion.MAX_DEPTH - 8)[0] == 0
    assert unfused(cpu_fusion.MAX_DEPTH - 8)[1] == 0
    assert unfused(3 * cuda_fusion.MAX_DEPTH)[0] in (2, 3)
    assert unfused(3 * cpu_fusion.MAX_DEPTH)[1] in (2, 3)


# ---- recursive helpers -----------------------------------------------------------------------------

def rec(v):
    return rec(v + 1.0)  # <-


def ping(v):
    return pong(v * 2.0)


def pong(v):
    return ping(v + 1.0)  # <-


@tw.kernel
def calls_rec(x):
    tw.store(x, index=(0,), tile=rec(tw.load(x, index=(0,), shape=(4,))))


@tw.kernel
def calls_ping(x):
    tw.store(x, index=(0,), tile=ping(tw.load(x, index=(0,), shape=(4,))))


def _marked_line(fn):
    lines, first = inspect.getsourcelines(fn)
    return first + next(i for i, text in enumerate(lines) if MARK in text)


@pytest.mark.parametrize("kernel, helper, message", [
    (calls_rec, rec, "helper 'rec' calls itself; recursion is not supported in kernels"),
    (calls_ping, pong, "helper 'ping' calls itself through 'pong'; recursion is not supported in kernels"),
], ids=["self", "mutual"])
def test_a_recursive_helper_is_an_error_at_the_call(backend, kernel, helper, message):
    x = np.zeros(4, np.float32)
    with pytest.raises(TileUnsupportedError) as info:
        tw.launch(None, (1,), kernel, (x,))
    e = info.value
    assert e.message == message
    file, line, col = e.loc
    assert file == __file__ and line == _marked_line(helper)
    text = str(e).splitlines()
    assert text[1].strip().startswith("return ") and text[2].strip() == "^"
    assert text[1].index(helper.__code__.co_names[0]) == text[2].index("^")  # the caret is under the call
    assert not x.any()
