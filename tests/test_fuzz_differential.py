"""Differential fuzzing: random tile programs (tests/fuzz_programs.py) must give the same results on
the reference backend (the oracle) and on cpu, and, for a few of them, on cuda-emulated.

Integer, bool and exact float results must agree bit for bit (NaN only by position: payloads are not
part of the semantics); see TOLERANCE for the rest. TILEWISE_FUZZ_EXAMPLES=500 runs a longer search,
TILEWISE_FUZZ_SKIP=sin,cos leaves ops out.
"""
from __future__ import annotations

import importlib.util
import itertools
import os

import numpy as np
import pytest
from conftest import env
from fuzz_programs import programs
from hypothesis import HealthCheck, Phase, given, reject, settings

import tilewise as tw
from tilewise import backends

# Allowed difference from the reference, in ulps (eps of the dtype named in each error term) per
# term. The reference computes transcendental functions in float64 and rounds once, while other
# backends call float32/float64 libm or their own vector code, which is accurate to a few ulp;
# "round" is one more rounding of an already inexact value (a product, a cast to a narrower float);
# "prod" is one factor of a float prod/cumprod and "sum" one term of a float sum/cumsum, both
# of which the reference accumulates in float64 in order while the cpu backend reassociates them.
# A float sum's error is bounded by the sum of its terms' magnitudes (stored beside it by the
# generator), not by its own value, which cancellation can make arbitrarily small.
TOLERANCE = {"round": 1, "prod": 2, "sum": 2, "pow": 4, "atan2": 4, "default": 4}

DEFAULT_EXAMPLES = 300  # about 60-90 s on the 2-core CI machine
EXAMPLES = int(os.environ.get("TILEWISE_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
# Ops to leave out (comma-separated, e.g. "sin,cos"): a knob to keep fuzzing past a known bug.
SKIP = frozenset(filter(None, os.environ.get("TILEWISE_FUZZ_SKIP", "").split(",")))
# Share of examples also run on cuda-emulated (TILEWISE_FUZZ_EMULATED=0 turns it off). A launch that never
# ends fails after TILEWISE_EMULATOR_TIMEOUT seconds instead of blocking the run.
EMULATE_PERCENT = int(os.environ.get("TILEWISE_FUZZ_EMULATED", "5")) if "cuda-emulated" in backends.available() else 0
_counter = itertools.count()


def _import_kernel(directory, prog):
    """Write the program (with its arguments as a trailing comment, to reproduce a hang) and import it."""
    path = directory / f"fuzz_{os.getpid()}_{next(_counter)}.py"
    path.write_text(prog.source + "\n# " + _describe(prog).split("--- program ---")[0].replace("\n", "\n# ") + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.fuzz_kernel


def _random(rng, shape, dtype):
    """Random data with the values that stress the semantics: NaN, infinities, signed zeros,
    subnormals and huge floats; integer extremes, 0 and -1."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        a = rng.integers(max(info.min, -100), min(info.max, 100), size=shape, endpoint=True).astype(dtype)
        special = np.array([info.min, info.max, 0, 1, -1 if info.min else 2], dtype)
    else:
        a = (rng.standard_normal(shape) * rng.choice([1, 2, 50])).astype(dtype)
        info = np.finfo(dtype)
        special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, info.smallest_subnormal, info.max, 1.0, 0.5], dtype)
    pick = rng.random(shape) < 0.06
    a[pick] = rng.choice(special, size=int(pick.sum()))
    return a


def _base_shape(arr):
    shape = arr.shape
    return (shape[0] * 2,) + shape[1:] if arr.view == "step2" else shape[::-1] if arr.view == "T" else shape


def _view(arr, base):
    """What the kernel sees of `base` for an Array spec (the tests compare whole bases)."""
    return {"step2": lambda a: a[::2], "rev": lambda a: a[::-1], "T": lambda a: a.T}.get(arr.view, lambda a: a)(base)


def _np_dtype(name):
    return np.dtype("bool" if name == "bool_" else name)


def _arguments(prog):
    rng = np.random.default_rng(prog.seed)
    inputs = [_view(a, _random(rng, _base_shape(a), _np_dtype(a.dtype))) for a in prog.inputs]
    outputs = [_random(rng, _base_shape(o), _np_dtype(o.dtype)) for o in prog.outputs]
    return inputs, outputs


def _run(kernel, prog, backend, inputs, outputs):
    """Launch on fresh copies of the (pre-filled) outputs; return them, or the TileError raised."""
    bases = [b.copy() for b in outputs]
    views = [_view(o, b) for o, b in zip(prog.outputs, bases)]
    with env(TILEWISE_BACKEND=backend, TILEWISE_POISON="1" if prog.poison else None):
        try:
            tw.launch(None, prog.grid, kernel, (*inputs, *views, prog.n0, prog.f0))
        except tw.TileError as e:
            return e
    return bases


def _ulps(err):
    return sum(TOLERANCE.get(src, TOLERANCE["default"]) * float(np.finfo(_np_dtype(dt)).eps) for src, dt in err)


def _mismatch(out, ref, got, bound=None):
    """A description of where `got` disagrees with `ref` beyond what `out` allows, or None."""
    if ref.dtype.kind in "biu":
        bad = ref != got
    else:
        r, g = ref.astype(np.float64), got.astype(np.float64)
        nan = np.isnan(r) | np.isnan(g)
        if bound is not None:
            eps = float(np.finfo(ref.dtype).eps)
            b = bound.astype(np.float64)
            tol = TOLERANCE["sum"] * out.count * eps * b + eps * np.abs(r)
            with np.errstate(invalid="ignore"):
                close = (r == g) | (np.abs(r - g) <= tol)  # r == g also where a store under an `if` skipped
                bad = np.where(np.isinf(b), False, np.where(nan, np.isnan(r) != np.isnan(g), ~close))
        elif out.err:
            rel = _ulps(out.err)
            info = np.finfo(ref.dtype)
            with np.errstate(invalid="ignore", over="ignore"):
                close = np.abs(r - g) <= rel * np.maximum(np.abs(r), np.abs(g)) + 2 * rel * float(info.tiny)
                close |= r == g
                near_max = np.maximum(np.abs(np.where(np.isinf(r), 0, r)), np.abs(np.where(np.isinf(g), 0, g)))
                close |= (np.isinf(r) | np.isinf(g)) & (np.sign(r) == np.sign(g)) & \
                    (near_max * (1 + 2 * rel) >= float(info.max))
            bad = np.where(nan, np.isnan(r) != np.isnan(g), ~close)
            if any(term[0] == "prod" for term in out.err):
                # A reassociated product can underflow to zero in one order and not in another; met by
                # an infinity (inf padding), that is NaN on one side and +-inf on the other. Seen with a
                # denormal factor among 16 finite ones and 16 infinities: reference NaN, cpu -inf.
                bad &= ~((np.isnan(r) & np.isinf(g)) | (np.isinf(r) & np.isnan(g)))
        elif out.zamb:
            bad = np.where(nan, np.isnan(r) != np.isnan(g), r != g)
        else:
            bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[ref.dtype.itemsize]
            bad = np.where(nan, np.isnan(r) != np.isnan(g), ref.view(bits) != got.view(bits))
    if not bad.any():
        return None
    where = np.argwhere(bad)[:5]
    rows = [f"  at {tuple(int(i) for i in w)}: reference {ref[tuple(w)]!r} got {got[tuple(w)]!r}"
            + (f" (bound {bound[tuple(w)]!r})" if bound is not None else "") for w in where]
    return f"{out.name} ({out.dtype}, {int(bad.sum())} of {bad.size} elements differ):\n" + "\n".join(rows)


def _describe(prog):
    arrays = ", ".join(f"{a.name}: {a.dtype}{list(a.shape)} {a.view}" for a in prog.inputs + prog.outputs)
    return (f"grid={prog.grid} n0={prog.n0} f0={prog.f0} poison={prog.poison} seed={prog.seed}\n"
            f"arrays: {arrays}\n--- program ---\n{prog.source}")


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory):
    """Where the programs go; their compiled code goes beside them, not into the user's disk cache."""
    path = tmp_path_factory.mktemp("fuzz_kernels")
    with env(TILEWISE_CACHE_DIR=str(path / "cache")):
        yield path


def check_program(kernel_dir, prog):
    """Run `prog` on the reference and the other backends; a description of any disagreement, or None.
    Raises hypothesis' reject() for a program the front end refuses (identically everywhere)."""
    kernel = _import_kernel(kernel_dir, prog)
    inputs, outputs = _arguments(prog)
    expected = _run(kernel, prog, "reference", inputs, outputs)
    for backend in ["cpu"] + (["cuda-emulated"] if prog.emulate else []):
        got = _run(kernel, prog, backend, inputs, outputs)
        if isinstance(expected, tw.TileError) or isinstance(got, tw.TileError):
            if type(got) is not type(expected) or str(got) != str(expected):
                return f"{backend}: {got!r} but the reference gave {expected!r}\n{_describe(prog)}"
            continue
        problems = []
        for out, ref, res in zip(prog.outputs, expected, got):
            bound = None
            if out.bound is not None:
                j = next(k for k, o in enumerate(prog.outputs) if o.name == out.bound)
                bound = _view(prog.outputs[j], expected[j])
            outside = np.ones(ref.shape, bool)
            _view(out, outside)[...] = False
            if not np.array_equal(ref[outside], res[outside], equal_nan=ref.dtype.kind == "f"):
                problems.append(f"{out.name}: elements outside the view changed")
            msg = _mismatch(out, _view(out, ref), _view(out, res), bound)
            if msg:
                problems.append(msg)
        if problems:
            return f"{backend} disagrees with the reference:\n" + "\n".join(problems) + "\n" + _describe(prog)
    if isinstance(expected, tw.TileError):
        reject()  # counted by hypothesis; the generator is meant to make this rare
    return None


# A long local run (TILEWISE_FUZZ_EXAMPLES=500) shrinks a failure to a small program; the bounded CI
# run reports the program as generated rather than spend minutes recompiling smaller ones.
LONG = EXAMPLES > DEFAULT_EXAMPLES


@settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG, print_blob=True,
          phases=list(Phase) if LONG else [Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(prog=programs(emulate_percent=EMULATE_PERCENT, skip=SKIP, chain_percent=3))
def test_random_programs_agree(kernel_dir, prog):
    problem = check_program(kernel_dir, prog)
    assert problem is None, problem


# A few programs with one long chain each (tw.static_iter, of TILEWISE_FUZZ_CHAIN_DEPTHS steps of one to
# three ops; 300 and 1000 in CI): the code generators walk and cut such chains without recursion
# (docs/semantics.md, Limits). CI's 4096-step chains are tests/test_hardening_depth.py's: random ones
# took minutes to compile on cpu (LLVM's optimiser on long where/cast chains); set
# TILEWISE_FUZZ_CHAIN_DEPTHS=300,1000,4096 for a longer run.
CHAIN_DEPTHS = tuple(int(d) for d in os.environ.get("TILEWISE_FUZZ_CHAIN_DEPTHS", "300,1000").split(","))
@settings(max_examples=int(os.environ.get("TILEWISE_FUZZ_CHAIN_EXAMPLES", 3)), deadline=None, derandomize=True,
          print_blob=True, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(prog=programs(emulate_percent=50 if EMULATE_PERCENT else 0, skip=SKIP, chain_percent=100,
                     chain_depths=CHAIN_DEPTHS))
def test_random_programs_with_long_chains_agree(kernel_dir, prog):
    problem = check_program(kernel_dir, prog)
    assert problem is None, problem
