"""The cpu backend's own object loader (backends/cpu/objload.py) and its MCJIT fallback (loading.py):
both load the same object code to the same results; objects the loader does not take fall back, or are
an error where TILEWISE_CPU_LOADER=native asks for it; the host description that keys the cache is
the one LLVM gives."""
import ctypes
import math

import numpy as np
import pytest
from conftest import env, random_array

import tilewise as tw
from tilewise import backends
from tilewise.backends.cpu import loading, objload
from tilewise.tools.demo import softmax

pytestmark = pytest.mark.skipif("cpu" not in backends.available(), reason="cpu backend unavailable")


@tw.kernel
def erf_scale(x, y, a, T: tw.Constant[int]):
    i = tw.bid(0)
    tw.store(y, (i,), tw.erf(tw.load(x, (i,), (T,))) * a + tw.exp(tw.load(x, (i,), (T,))))


def _run(kernel, grid, args, loader):
    kernel.runtime_cache.clear()
    with env(TILEWISE_BACKEND="cpu", TILEWISE_CPU_LOADER=loader):
        tw.launch(None, grid, kernel, args)
        (_, exe), = kernel.runtime_cache.values()
        return exe._variants[False][0].loader


@pytest.mark.parametrize("loader", ["native", "mcjit"])
def test_both_loaders_run_the_same_object_to_the_same_results(loader, rng):
    x = random_array(rng, (37, 200), np.float32)
    y = np.full_like(x, np.nan)
    assert _run(softmax, (37,), (x, y, 1, 256), loader) == loader
    e = np.exp(x.astype(np.float64) - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    v = random_array(rng, (100,), np.float64)
    w = np.full_like(v, np.nan)
    assert _run(erf_scale, (tw.cdiv(100, 32),), (v, w, 0.5, 32), loader) == loader
    want = np.array([math.erf(t) for t in v]) * 0.5 + np.exp(v)
    np.testing.assert_allclose(w, want, rtol=1e-14)


def test_an_object_the_loader_does_not_take_falls_back_to_mcjit(monkeypatch, rng):
    def refuse(obj):
        raise objload.Unsupported("test")
    monkeypatch.setattr(objload, "Image", refuse)
    x = random_array(rng, (5, 30), np.float32)
    y = np.zeros_like(x)
    assert _run(softmax, (5,), (x, y, 1, 32), "auto") == "mcjit"
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(RuntimeError, match="object loader cannot load"):
        _run(softmax, (5,), (x, y, 1, 32), "native")


def test_a_bad_loader_choice_is_a_launch_error(rng):
    x = random_array(rng, (2, 8), np.float32)
    with pytest.raises(tw.TileLaunchError, match="TILEWISE_CPU_LOADER"):
        _run(softmax, (2,), (x, x.copy(), 1, 8), "fast")


def _object(ir_text):
    from tilewise.backends.cpu import compiler
    return compiler.compile_object(ir_text)[0]


# A function calling libm's cos through an undefined symbol, with a counter in .bss, a table in .data and
# constants in .rodata: every kind of section and relocation target the backend's objects may have.
_LIBM_IR = """
declare double @cos(double)
@counter = internal global i64 0
@table = internal global [4 x double] [double 1.5, double 2.5, double 3.5, double 4.5]
define double @f(double %x, i64 %i) {
  %c = call double @cos(double %x)
  %p = getelementptr [4 x double], ptr @table, i64 0, i64 %i
  %t = load double, ptr %p
  %n = load i64, ptr @counter
  %n1 = add i64 %n, 1
  store i64 %n1, ptr @counter
  %nf = sitofp i64 %n1 to double
  %s = fadd double %c, %t
  %r = fmul double %s, %nf
  ret double %r
}
"""


def test_the_loader_links_libm_data_and_bss():
    image = objload.Image(_object(_LIBM_IR))
    f = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_int64)(image.symbol("f"))
    for calls, (x, i) in enumerate([(0.3, 0), (-2.0, 3), (1e3, 1)], start=1):
        assert f(x, i) == (math.cos(x) + [1.5, 2.5, 3.5, 4.5][i]) * calls
    assert image.symbol("nothing") is None


@pytest.mark.parametrize("damage, why", [
    (lambda o: b"\0" + o[1:], "not an ELF"),
    (lambda o: o[:18] + (183).to_bytes(2, "little") + o[20:], "x86-64"),   # e_machine: AArch64
    (lambda o: o[:4] + b"\1" + o[5:], "x86-64"),                            # 32-bit class
])
def test_objects_of_another_kind_are_refused(damage, why):
    obj = _object(_LIBM_IR)
    with pytest.raises(objload.Unsupported, match=why):
        objload.Image(damage(obj))


def test_an_unknown_symbol_is_refused():
    obj = _object("declare double @tw_no_such_function(double)\n"
                  "define double @f(double %x) {\n  %r = call double @tw_no_such_function(double %x)\n"
                  "  ret double %r\n}\n")
    with pytest.raises(objload.Unsupported, match="tw_no_such_function"):
        objload.Image(obj)


def test_the_cached_host_description_is_llvms(tmp_path):
    from tilewise.backends.cpu import compiler
    with env(TILEWISE_CACHE_DIR=str(tmp_path), TILEWISE_CACHE=None):
        first = loading._host_description()            # a miss: asks LLVM and stores it
        assert (tmp_path / loading.HOST_NAMESPACE).is_dir()
        assert loading._host_description() == first == compiler.host_description()
        fingerprint = loading._host_fingerprint()
        assert fingerprint is not None and any("flags" in p or "Features" in p for p in map(str, fingerprint))
