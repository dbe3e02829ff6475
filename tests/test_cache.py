"""The on-disk compile cache (tilewise/support/diskcache.py) on its own, and as the cpu backend uses it:
hits and misses, what the key covers, torn and corrupt entries, concurrent writers, a cache that cannot
be written or is turned off, and a warm hit that runs no LLVM. Every test has a cache root of its own."""
import os
import stat
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import random_array

import tilewise as tw
from tilewise import backends
from tilewise.support import diskcache as cache


@pytest.fixture(autouse=True)
def root(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(d))
    monkeypatch.delenv("TILEWISE_CACHE", raising=False)
    monkeypatch.setattr(cache, "_WARNED", set())
    return d


@pytest.fixture
def cpu(monkeypatch):
    if "cpu" not in backends.available():
        from tilewise.backends.cpu import CpuBackend
        monkeypatch.setitem(backends._FACTORIES, "cpu", CpuBackend)
    monkeypatch.setenv("TILEWISE_BACKEND", "cpu")
    from tilewise.backends.cpu import compiler
    return compiler


def entries(root, ns="cpu"):
    d = root / ns
    return sorted(p.name for p in d.iterdir() if p.name != cache.MARKER) if d.exists() else []


# ---- the store ----------------------------------------------------------------------------------------

def test_put_get_roundtrip_and_miss(root):
    assert cache.get("cpu", "k") is None
    data = bytes(range(256)) * 40
    assert cache.put("cpu", ("k", b"\x00\x01"), data)
    assert cache.get("cpu", ("k", b"\x00\x01")) == data
    assert cache.get("cpu", ("k", b"\x00\x02")) is None
    assert cache.put("cpu", "empty", b"") and cache.get("cpu", "empty") == b""
    assert len(entries(root)) == 2


def test_key_parts_do_not_run_into_each_other():
    assert cache.key_digest(("ab", "c")) != cache.key_digest(("a", "bc"))
    assert cache.key_digest("abc") == cache.key_digest(("abc",)) == cache.key_digest((b"abc",))


def test_root_follows_xdg_when_no_dir_is_given(monkeypatch, tmp_path):
    monkeypatch.delenv("TILEWISE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.root() == tmp_path / "xdg" / "tilewise"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.root() == tmp_path / "home" / ".cache" / "tilewise"


@pytest.mark.parametrize("damage", ["flip_payload", "flip_header", "truncate", "header_only", "empty", "foreign"])
def test_a_damaged_entry_is_a_miss_and_is_deleted(root, damage):
    data = os.urandom(5000)
    cache.put("cpu", "key", data)
    (path,) = [root / "cpu" / n for n in entries(root)]
    blob = bytearray(path.read_bytes())
    if damage == "flip_payload":
        blob[-100] ^= 0x40
    elif damage == "flip_header":
        blob[3] ^= 1
    elif damage == "truncate":
        blob = blob[:-1]
    elif damage == "header_only":
        blob = blob[:40]
    elif damage == "empty":
        blob = b""
    else:  # a whole, valid entry of another key under this key's name
        cache.put("cpu", "other", b"other")
        blob = (root / "cpu" / f"{cache.key_digest('other').hex()}.bin").read_bytes()
    path.write_bytes(bytes(blob))
    with pytest.warns(RuntimeWarning, match="damaged compile cache entry"):
        assert cache.get("cpu", "key") is None
    assert not path.exists()
    cache.put("cpu", "key", data)
    assert cache.get("cpu", "key") == data


def test_writes_leave_no_temporary_files_even_when_they_fail(root, monkeypatch):
    for i in range(5):
        cache.put("cpu", str(i), os.urandom(1000))
    assert not [n for n in entries(root) if n.startswith(cache.TMP_PREFIX)]

    def refuse(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cache.os, "replace", refuse)
    with pytest.warns(RuntimeWarning, match="No space left"):
        assert cache.put("cpu", "late", b"x") is False
    assert len(entries(root)) == 5 and cache.get("cpu", "late") is None


def test_concurrent_writers_never_show_a_torn_entry(root):
    """Two processes rewrite one key with different 2 MB payloads while this one reads it: every read is
    a miss or one whole payload."""
    writer = textwrap.dedent("""
        import sys
        from tilewise.support import diskcache as cache
        payload = bytes([int(sys.argv[1])]) * (2 << 20)
        for _ in range(40):
            cache.put("cpu", "shared", payload)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", writer, str(b)], env=os.environ.copy()) for b in (1, 2)]
    seen = set()
    while any(p.poll() is None for p in procs):
        got = cache.get("cpu", "shared")
        if got is not None:
            assert len(got) == 2 << 20 and got.count(got[:1]) == len(got)
            seen.add(got[0])
    assert [p.wait() for p in procs] == [0, 0]
    assert cache.get("cpu", "shared")[0] in (1, 2)
    assert seen <= {1, 2}
    assert not [n for n in entries(root) if n.startswith(cache.TMP_PREFIX)]


def test_an_unwritable_cache_warns_once_and_compilation_goes_on(tmp_path, monkeypatch, cpu, rng):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="not usable") as record:
        assert cache.put("cpu", "k", b"x") is False
        assert cache.put("cpu", "k2", b"x") is False
        x = random_array(rng, (37,), np.float32)
        y = np.zeros_like(x)
        tw.launch(None, (5,), _scale_kernel(), (x, y, 2.0, 8))
    assert len([w for w in record if "not usable" in str(w.message)]) == 1
    np.testing.assert_array_equal(y, x * np.float32(2.0))
    assert cache.get("cpu", "k") is None


def test_cache_off_reads_and_writes_nothing(root, monkeypatch, cpu, rng):
    monkeypatch.setenv("TILEWISE_CACHE", "0")
    assert cache.put("cpu", "k", b"x") is False and cache.get("cpu", "k") is None
    x = random_array(rng, (20,), np.float32)
    y = np.zeros_like(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tw.launch(None, (3,), _scale_kernel(), (x, y, -1.5, 8))
    np.testing.assert_array_equal(y, x * np.float32(-1.5))
    assert not root.exists()
    assert cache.info()["enabled"] is False


def test_info_counts_and_clear_removes_only_our_directories(root):
    cache.put("cpu", "a", b"1" * 100)
    cache.put("cpu", "b", b"2" * 50)
    cache.put("cuda", "c", b"3" * 10)
    stranger = root / "not-ours"
    stranger.mkdir()
    (stranger / "keep.txt").write_text("user data")
    (root / "notes.txt").write_text("user data")
    i = cache.info()
    assert i["root"] == str(root) and i["enabled"] is True
    header = cache._HEADER.size
    assert i["namespaces"] == {"cpu": {"entries": 2, "bytes": 150 + 2 * header},
                               "cuda": {"entries": 1, "bytes": 10 + header}}
    assert cache.clear("cuda") == 1 and set(cache.info()["namespaces"]) == {"cpu"}
    assert cache.clear() == 2
    assert cache.info()["namespaces"] == {}
    assert (stranger / "keep.txt").exists() and (root / "notes.txt").exists()
    assert cache.get("cpu", "a") is None


# ---- the cpu backend on the cache ---------------------------------------------------------------------

def _scale_kernel():
    @tw.kernel
    def scale(x, y, s, T: tw.Constant[int]):
        i = tw.bid(0)
        tw.store(y, (i,), tw.load(x, (i,), (T,)) * s)
    return scale


@tw.kernel
def shifted_sum(x, y, T: tw.Constant[int]):
    i = tw.bid(0)
    t = tw.load(x, (i,), (T,))   # UNDETERMINED padding: TILEWISE_POISON changes the code
    tw.store(y, (i,), tw.full((T,), tw.sum(t), tw.float32) + t)


def _launch_sum(x, t):
    y = np.zeros_like(x)
    tw.launch(None, (tw.cdiv(x.size, t),), shifted_sum, (x, y, t))
    return y


def _want_sum(x, t):
    out = np.empty_like(x)
    for s in range(0, x.size, t):
        out[s:s + t] = x[s:s + t] + np.float32(x[s:s + t].astype(np.float64).sum())
    return out


def test_key_changes_with_source_constants_and_poison(root, monkeypatch, cpu, rng):
    x = random_array(rng, (24,), np.float32)
    shifted_sum.runtime_cache.clear()
    np.testing.assert_allclose(_launch_sum(x, 8), _want_sum(x, 8), rtol=1e-5)
    first = entries(root)
    assert len(first) == 2  # object code and optimised IR
    assert len(entries(root, "cpu-kernel")) == 2  # object code and launch metadata, keyed by the Tile IR
    np.testing.assert_allclose(_launch_sum(x, 6), _want_sum(x, 6), rtol=1e-5)       # a new constant
    assert len(entries(root)) == 4
    monkeypatch.setenv("TILEWISE_POISON", "1")                                        # poison on
    np.testing.assert_allclose(_launch_sum(x, 8), _want_sum(x, 8), rtol=1e-5)
    assert len(entries(root)) == 6
    y = np.zeros_like(x)
    tw.launch(None, (3,), _scale_kernel(), (x, y, 3.0, 8))                            # other source
    assert len(entries(root)) == 8 and set(first) <= set(entries(root))
    np.testing.assert_array_equal(y, x * np.float32(3.0))


def test_warm_hit_runs_no_llvm_and_keeps_code(root, monkeypatch, cpu, rng):
    x = random_array(rng, (40,), np.float32)
    shifted_sum.runtime_cache.clear()
    cold = tw.compile(shifted_sum, (x, x.copy(), 16), target="cpu")
    code, binary = cold.code, cold.binary
    shifted_sum.runtime_cache.clear()

    def no_llvm(*a, **k):
        raise AssertionError("LLVM ran on a warm cache hit")
    monkeypatch.setattr(cpu, "optimise", no_llvm)
    monkeypatch.setattr(cpu, "emit_object", no_llvm)
    warm = tw.compile(shifted_sum, (x, x.copy(), 16), target="cpu")
    assert warm.executable is not cold.executable
    assert warm.binary == binary and warm.code == code and "define" in code
    np.testing.assert_allclose(_launch_sum(x, 16), _want_sum(x, 16), rtol=1e-5)


def test_a_warm_process_loads_what_a_cold_one_stored(root, cpu, tmp_path):
    """Across processes: the second runs the kernel without importing the code generator or LLVM at all;
    its own loader maps the cached object code (objload.py)."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        import tilewise as tw
        @tw.kernel
        def axpy(x, y, a, T: tw.Constant[int]):
            i = tw.bid(0)
            tw.store(y, (i,), a * tw.load(x, (i,), (T,)) + tw.load(y, (i,), (T,)))
        x = np.arange(50, dtype=np.float32); y = np.ones(50, np.float32)
        tw.launch(None, (tw.cdiv(50, 16),), axpy, (x, y, 2.0, 16))
        assert np.array_equal(y, 2 * x + 1), y
        if sys.argv[1] == "warm":
            for name in ("tilewise.backends.cpu.codegen", "tilewise.backends.cpu.compiler", "llvmlite.binding"):
                assert name not in sys.modules, name
            (fn, exe), = axpy.runtime_cache.values()
            assert exe._variants[False][0].loader == "native"
    """)
    path = tmp_path / "axpy.py"  # kernels need a source file
    path.write_text(script)
    env = {**os.environ, "TILEWISE_BACKEND": "cpu"}
    for mode in ("cold", "warm"):
        r = subprocess.run([sys.executable, str(path), mode], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
    assert len(entries(root)) == 2


def test_corrupt_cpu_entries_are_recompiled(root, cpu, rng):
    x = random_array(rng, (30,), np.float32)
    shifted_sum.runtime_cache.clear()
    _launch_sum(x, 8)
    namespaces = ("cpu", "cpu-kernel")  # LLVM-IR-keyed and Tile-IR-keyed entries
    for ns in namespaces:
        for name in entries(root, ns):
            p = root / ns / name
            p.write_bytes(p.read_bytes()[:-7] + b"garbage")
    shifted_sum.runtime_cache.clear()
    with pytest.warns(RuntimeWarning, match="damaged") as record:
        np.testing.assert_allclose(_launch_sum(x, 8), _want_sum(x, 8), rtol=1e-5)
    assert len(record) == 1  # once, for four bad entries
    data = {(ns, n): (root / ns / n).read_bytes() for ns in namespaces for n in entries(root, ns)}
    assert len(data) == 4 and not any(b.endswith(b"garbage") for b in data.values())


def test_printing_kernels_run_from_the_cache(root, cpu, capsys):
    @tw.kernel
    def show(x, T: tw.Constant[int]):
        tw.printf("block %d sum %.1f\n", tw.bid(0), tw.sum(tw.load(x, (tw.bid(0),), (T,))))
    x = np.arange(8, dtype=np.float32)
    for _ in range(2):
        show.runtime_cache.clear()
        tw.launch(None, (2,), show, (x, 4))
        assert capsys.readouterr().out == "block 0 sum 6.0\nblock 1 sum 22.0\n"


# ---- the CUDA backends on the cache -------------------------------------------------------------------

def test_cubins_are_cached(root, monkeypatch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    from tilewise.backends.cuda import nvrtc
    x = np.zeros(64, np.float32)
    k = _scale_kernel()
    cold = tw.compile(k, (x, x.copy(), 2.0, 32), target="cuda:sm_80")
    assert len(entries(root, "cuda")) == 1
    k.runtime_cache.clear()

    def no_nvrtc():
        raise AssertionError("NVRTC ran on a warm cache hit")
    monkeypatch.setattr(nvrtc, "_program", no_nvrtc)
    warm = tw.compile(k, (x, x.copy(), 2.0, 32), target="cuda:sm_80")
    assert warm.binary == cold.binary and warm.resources == cold.resources
    assert "registers" in warm.resources
    k.runtime_cache.clear()
    with pytest.raises(AssertionError, match="NVRTC ran"):  # another arch is another key
        tw.compile(k, (x, x.copy(), 2.0, 32), target="cuda:sm_90")


def test_emulator_libraries_live_in_the_cache_namespace(root, monkeypatch):
    if "cuda-emulated" not in backends.available():
        pytest.skip("no cuda-emulated backend here")
    from tilewise.backends.cuda import emulator
    x = np.zeros(64, np.float32)
    src = tw.compile(_scale_kernel(), (x, x.copy(), 2.0, 32), target="cuda-emulated").code
    lib = emulator.build(src)
    assert lib == emulator.cache_entries(src)["library"] and lib.parent == root / "cuda-emulated"
    assert (lib.parent / cache.MARKER).exists() and cache.check(lib) is None
    monkeypatch.setenv("TILEWISE_CACHE", "0")
    private = emulator.build(src)
    assert private.is_file() and private.parent == cache.private_dir() and root not in private.parents


def test_file_entries_come_back_as_verified_private_copies(root, tmp_path):
    built = tmp_path / "built.so"
    built.write_bytes(os.urandom(3000))
    assert cache.put_file("cuda-emulated", "lib", built)
    entry = cache.entry_path("cuda-emulated", "lib")
    assert entry.parent == root / "cuda-emulated" and cache.check(entry) is None
    copy = cache.get_file("cuda-emulated", "lib", "sub/lib.so")
    assert copy == cache.private_dir() / "sub" / "lib.so" and copy.read_bytes() == built.read_bytes()
    assert stat.S_IMODE(cache.private_dir().stat().st_mode) == 0o700
    entry.write_bytes(entry.read_bytes()[:-1])
    assert cache.check(entry) is not None
    with pytest.warns(RuntimeWarning, match="damaged") as record:
        assert cache.get_file("cuda-emulated", "lib", "other.so") is None
        assert cache.get("cpu", "k") is None  # a miss is no damage
        cache.put("cpu", "k", b"x")
        (root / "cpu" / f"{cache.key_digest('k').hex()}.bin").write_bytes(b"junk")
        assert cache.get("cpu", "k") is None  # a second damaged entry: no second warning
    assert len(record) == 1
    assert not entry.exists() and not (cache.private_dir() / "other.so").exists()


def test_a_warm_hit_reports_failed_asserts_at_their_line(root, cpu):
    """Assert messages and source lines come from the Tile-IR-keyed entry's metadata on a warm hit."""
    @tw.kernel
    def checked(x, T: tw.Constant[int]):
        tw.assert_(tw.sum(tw.load(x, (0,), (T,))) < 0, "sum must be negative")  # <- the failing line

    x = np.ones(4, np.float32)
    reports = []
    for _ in range(2):
        checked.runtime_cache.clear()
        with pytest.raises(tw.TileAssertionError) as info:
            tw.launch(None, (1,), checked, (x, 4))
        reports.append(str(info.value))
    assert len(entries(root, "cpu-kernel")) == 2
    assert reports[0] == reports[1] and "sum must be negative" in reports[0] and "the failing line" in reports[0]
