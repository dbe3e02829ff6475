"""Resource limits and malformed launch inputs are clear errors, the same on every host backend: tiles
too large for a block, a cpu block frame too large for a stack, the reference backend out of memory, a
stream that is no stream, strides that are not whole elements, and print formats Python would refuse."""
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tilewise as tw
from tilewise.backends.cpu import launcher
from tilewise.frontend.limits import MAX_TILE_ELEMENTS

HERE = os.path.abspath(__file__)


def _line_of(text):
    with open(HERE) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)


# ---- tile size: every backend, at compile time, at the tile's line ----------------------------------

@tw.kernel
def filled(c, n: tw.Constant[int]):
    t = tw.full((n,), 1.0, tw.float32)  # filled-tile
    tw.store(c, index=(0,), tile=t)


@tw.kernel
def loaded(c, n: tw.Constant[int]):
    t = tw.load(c, index=(0,), shape=(n,))  # loaded-tile
    tw.store(c, index=(0,), tile=t * tw.sum(t) + tw.max(t))


@tw.kernel
def outer(a, b, n: tw.Constant[int], m: tw.Constant[int]):
    x = tw.load(a, index=(0,), shape=(n,))
    y = tw.load(b, index=(0,), shape=(m,))
    p = x[:, None] * y[None, :]  # outer-tile
    tw.store(a, index=(0,), tile=tw.sum(p, axis=1))


def test_tile_limit_is_2_to_the_24_elements():
    assert MAX_TILE_ELEMENTS == 2**24


def test_largest_tile_compiles_and_runs(backend):
    c = np.zeros(4, np.float32)
    tw.launch(None, (1,), filled, (c, MAX_TILE_ELEMENTS))  # the cuda backends fuse the splat: no shared memory
    np.testing.assert_array_equal(c, 1.0)


@pytest.mark.parametrize("n", [MAX_TILE_ELEMENTS + 1, 2**31])
def test_tile_over_the_limit_is_a_compile_error_at_its_line(backend, n):
    c = np.ones(4, np.float32)
    for kernel, mark in [(filled, "# filled-tile"), (loaded, "# loaded-tile")]:
        with pytest.raises(tw.TileValueError) as e:
            tw.launch(None, (1,), kernel, (c, n))
        assert e.value.loc[:2] == (HERE, _line_of(mark))
        text = str(e.value)
        assert f"{n:,} elements" in text and "at most 16,777,216 (2**24) elements" in text
        assert "smaller tiles" in text and "^" in text
    np.testing.assert_array_equal(c, 1.0)  # nothing ran


def test_tile_limit_counts_every_dimension_and_op(backend):
    a, b = np.ones(4096, np.float32), np.ones(4097, np.float32)
    with pytest.raises(tw.TileValueError, match=r"tile<4096x4097xfloat32> has 16,781,312 elements") as e:
        tw.compile(outer, (a, b, 4096, 4097), target=backend)
    assert e.value.loc[:2] == (HERE, _line_of("# outer-tile"))
    tw.compile(outer, (a, b, 4096, 4096), target="reference")  # 2**24 exactly: fine


# ---- cpu: the per-block frame -------------------------------------------------------------------------

@tw.kernel
def many_buffers(c, n: tw.Constant[int], m: tw.Constant[int]):
    t = tw.load(c, index=(0,), shape=(n,))  # frame-tile
    acc = tw.sum(t)
    for i in tw.static_iter(range(m)):
        u = tw.cumsum(t + i)  # a scan's result and its input both need buffers on the cpu backend
        acc = acc + tw.sum(u) + tw.max(u)
    tw.store(c, index=(0,), tile=t + acc)


def test_cpu_frame_limit_boundary():
    fn = tw.compile(loaded, (np.ones(4, np.float32), 4), target="reference").function
    launcher._check_frame(fn, launcher.MAX_FRAME_BYTES)
    with pytest.raises(tw.TileUnsupportedError, match=r"536,870,913 bytes of stack per block.*512 MiB"):
        launcher._check_frame(fn, launcher.MAX_FRAME_BYTES + 1)


def test_cpu_frame_over_the_limit_is_a_compile_error():
    c = np.ones(4, np.float64)
    n = MAX_TILE_ELEMENTS  # 128 MiB per float64 tile
    tw.compile(many_buffers, (c, n, 1), target="cpu")  # three buffers, about 400 MB: compiles
    with pytest.raises(tw.TileUnsupportedError) as e:
        tw.compile(many_buffers, (c, n, 2), target="cpu")  # five, about 670 MB
    assert e.value.loc[:2] == (HERE, _line_of("# frame-tile"))
    assert "on the cpu backend" in str(e.value) and "use smaller tile shapes" in str(e.value)


# ---- reference: out of memory -------------------------------------------------------------------------

_OOM = textwrap.dedent("""
    import os, resource, numpy as np, tilewise as tw
    os.environ["TILEWISE_BACKEND"] = "reference"

    @tw.kernel
    def k(c, n: tw.Constant[int]):
        t = tw.load(c, index=(0,), shape=(n,))
        tw.store(c, index=(0,), tile=tw.cumsum(t) + tw.sum(t))

    c = np.ones(4, np.float64)
    tw.launch(None, (1,), k, (c, 4))
    vm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmSize")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (vm + (64 << 20), resource.RLIM_INFINITY))
    try:
        tw.launch(None, (1,), k, (c, 1 << 24))
    except tw.TileUnsupportedError as e:
        print("ERROR", e.loc[1], e.message)
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="address-space limit through /proc")
def test_reference_out_of_memory_is_a_tile_error(tmp_path):
    script = tmp_path / "oom.py"
    script.write_text(_OOM)
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERROR 7 the reference backend ran out of memory making "
                                 "tile<16777216xfloat64>"), out.stdout
    assert "use smaller tile shapes" in out.stdout


# ---- streams ------------------------------------------------------------------------------------------

@tw.kernel
def inc(a):
    t = tw.load(a, index=(0,), shape=(4,))
    tw.store(a, index=(0,), tile=t + 1.0)


class _ForeignStream:  # what CuPy and PyTorch streams offer
    def __cuda_stream__(self):
        return (0, 0)


@pytest.mark.parametrize("stream", ["foo", 1.5, b"s", True, object(), [0]])
def test_stream_that_is_no_stream_is_a_type_error(backend, stream):
    a = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=f"stream must be None, a tw.Stream.*got {type(stream).__name__}") as e:
        tw.launch(stream, (1,), inc, (a,))
    assert isinstance(e.value, tw.TileLaunchError)
    np.testing.assert_array_equal(a, 0)  # raised before anything ran


@pytest.mark.parametrize("stream", [None, 0, _ForeignStream()])
def test_streams_the_runtime_knows_run_host_arrays(backend, stream):
    a = np.zeros(4, np.float32)
    tw.launch(stream, (1,), inc, (a,))
    np.testing.assert_array_equal(a, 1)


# ---- strides ------------------------------------------------------------------------------------------

def _odd_strided(shape, strides):
    return np.ndarray(shape, np.float32, buffer=np.zeros(64, np.uint8), strides=strides)


@pytest.mark.parametrize("shape, strides", [((4,), (6,)), ((2, 4), (18, 4)), ((1,), (6,)), ((4, 1), (4, 2))])
def test_strides_that_are_not_whole_elements_are_refused_everywhere(backend, shape, strides):
    tw.launch(None, (1,), inc, (np.zeros(8, np.float32)[::2],))  # a valid strided view first: the fast path
    x = _odd_strided(shape, strides)
    want = (rf"argument 'a' of kernel 'inc' has strides {re.escape(str(strides))} \(bytes\); a stride that is "
            r"not a multiple of its element size 4 \(float32\).*np.ascontiguousarray")
    for _ in range(2):  # the second launch takes the fast path if anything does
        with pytest.raises(tw.TileLaunchError, match=want):
            tw.launch(None, (1,), inc, (x,))
    assert not x.any()


@tw.kernel
def inc_list(arrs):
    t = tw.load(arrs[1], index=(0,), shape=(4,))
    tw.store(arrs[1], index=(0,), tile=t + 1.0)


def test_odd_strides_in_an_array_list_are_refused(backend):
    with pytest.raises(tw.TileLaunchError, match=r"argument 'arrs' of kernel 'inc_list'\[1\] has strides \(6,\)"):
        tw.launch(None, (1,), inc_list, ([np.zeros(4, np.float32), _odd_strided((4,), (6,))],))


def test_whole_element_strides_still_work(backend):
    base = np.zeros(16, np.float32)
    tw.launch(None, (1,), inc, (base[::3],))
    np.testing.assert_array_equal(base[::3][:4], 1)
    assert base.sum() == 4


# ---- print formats ------------------------------------------------------------------------------------

@tw.kernel
def bad_spec(a):
    t = tw.load(a, index=(0,), shape=(4,))
    print(f"{t:%%%q}")  # bad-spec


@tw.kernel
def bad_const_spec(a):
    print(f"{3:%%%q}")  # bad-const-spec


@tw.kernel
def int_precision(a):
    print(f"{tw.bid(0):.2}")  # int-precision


@tw.kernel
def aligned_spec(a):
    t = tw.load(a, index=(0,), shape=(4,))
    print(f"{tw.sum(t):>10}")  # aligned-spec


@tw.kernel
def bad_printf(a):
    tw.printf("%q\n", tw.bid(0))  # bad-printf


@tw.kernel
def short_printf(a):
    tw.printf("%d %d\n", tw.bid(0))  # short-printf


@tw.kernel
def good_print(a):
    t = tw.load(a, index=(0,), shape=(4,))
    print(f"s={tw.sum(t):+8.3f} n={tw.bid(0):03d} x={tw.bid(0) + 10:x} e={tw.max(t):.1e} {5:>3} 100%")
    tw.printf("%5.1f%% %v\n", tw.sum(t), tw.bid(0))


@pytest.mark.parametrize("kernel, mark, cls, msg", [
    (bad_spec, "# bad-spec", tw.TileValueError, r"invalid format spec '%%%q' for a float32 value"),
    (bad_const_spec, "# bad-const-spec", tw.TileValueError, r"invalid format spec '%%%q' for int 3"),
    (int_precision, "# int-precision", tw.TileValueError, r"invalid format spec '.2' for a int32 value"),
    (aligned_spec, "# aligned-spec", tw.TileUnsupportedError, r"format spec '>10' is not supported"),
    (bad_printf, "# bad-printf", tw.TileValueError, r"invalid conversion at '%q"),
    (short_printf, "# short-printf", tw.TileValueError, r"has 2 conversions but 1 value was given"),
])
def test_print_formats_python_refuses_are_compile_errors(backend, kernel, mark, cls, msg):
    with pytest.raises(cls, match=msg) as e:
        tw.launch(None, (1,), kernel, (np.ones(4, np.float32),))
    assert e.value.loc[:2] == (HERE, _line_of(mark))


def test_valid_print_formats_print_alike(backend, capfd):
    tw.launch(None, (2,), good_print, (np.array([0.5, 1.25, 2.0, 3.0], np.float32),))
    out = capfd.readouterr().out.splitlines()  # the reference prints op by op, the others block by block
    assert sorted(out) == sorted(["s=  +6.750 n=000 x=a e=3.0e+00   5 100%", "  6.8% 0",
                                  "s=  +6.750 n=001 x=b e=3.0e+00   5 100%", "  6.8% 1"])
