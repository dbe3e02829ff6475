"""A damaged compile cache never crashes and never lies (issue 18, part 1). Each damage of the issue's
table, done to the cuda-emulated backend's entries (the shared library, the precompiled header) and to
the cpu backend's (object code, launch metadata, optimised IR), is caught by the entry's digest before
anything is loaded: one RuntimeWarning, a recompile, the right answer, and a sound entry in its place. A
read-only cache still serves its hits. Launches on a damaged cache run in a subprocess, where a crash
(SIGBUS, SIGSEGV) shows as an exit status instead of taking pytest down. Every test has its own cache."""
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tilewise as tw
from tilewise import backends
from tilewise.support import diskcache as cache

KERNELS = textwrap.dedent("""
    import tilewise as tw

    @tw.kernel
    def affine(x, y, T: tw.Constant[int]):
        i = tw.bid(0)
        tw.store(y, (i,), tw.load(x, (i,), (T,)) * 3.0 + 1234.5)
""")
CONSTANT, PATCHED = struct.pack("<f", 1234.5), struct.pack("<f", 1000.5)

# argv: kernels' directory, tile size, "ro" (no write under the cache root may succeed) or "rw".
# Prints what the parent checks: the answer, the RuntimeWarnings, how many times g++ ran, whether the
# cpu code generator ran, and whether any file of the cache root is mapped into the process.
RUN = textwrap.dedent("""
    import json, os, sys, tempfile, warnings
    sys.path.insert(0, sys.argv[1])
    import numpy as np
    import tilewise as tw
    from tilewise.support import diskcache
    root = str(diskcache.root())
    if sys.argv[3] == "ro":  # chmod alone does not stop root; refuse every write under the root as well
        real = tempfile.mkstemp
        def mkstemp(*a, dir=None, **k):
            if dir is not None and str(dir).startswith(root):
                raise PermissionError(13, "Permission denied", str(dir))
            return real(*a, dir=dir, **k)
        tempfile.mkstemp = mkstemp
    from tilewise.backends.cuda import emulator
    compiles, run_gxx = [], emulator._compile
    emulator._compile = lambda cmd: compiles.append(cmd) or run_gxx(cmd)
    from hc_kernels import affine
    T = int(sys.argv[2])
    x = np.arange(64, dtype=np.float32)
    y = np.zeros_like(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tw.launch(None, (64 // T,), affine, (x, y, T))
    with open("/proc/self/maps") as f:
        maps = f.read()
    print(json.dumps({"right": bool(np.array_equal(y, x * np.float32(3) + np.float32(1234.5))),
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)],
                      "compiles": len(compiles), "codegen": "tilewise.backends.cpu.codegen" in sys.modules,
                      "maps_cache": root in maps}))
""")


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    d = tmp_path_factory.mktemp("kernels")
    (d / "hc_kernels.py").write_text(KERNELS)
    return d


def run(kernels, root, backend, T=16, mode="rw"):
    env = {**os.environ, "TILEWISE_CACHE_DIR": str(root), "TILEWISE_BACKEND": backend}
    env.pop("TILEWISE_CACHE", None)
    r = subprocess.run([sys.executable, "-c", RUN, str(kernels), str(T), mode], env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"the launch died (status {r.returncode}):\n{r.stderr[-3000:]}"
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["right"], out
    assert not out["maps_cache"], "a file of the cache itself was mapped, not a verified private copy"
    return out


_PRISTINE = {}


@pytest.fixture
def populated(kernels, tmp_path, tmp_path_factory):
    """A copy of a cache that one cold run of the backend filled (in a subprocess, so that every entry,
    the precompiled header included, is stored), and the launch on it."""
    def make(backend):
        if backend not in backends.available():
            pytest.skip(f"no {backend} backend here")
        if backend not in _PRISTINE:
            d = tmp_path_factory.mktemp(f"pristine-{backend}")
            run(kernels, d, backend)
            _PRISTINE[backend] = d
        root = tmp_path / "cache"
        shutil.copytree(_PRISTINE[backend], root)
        return root
    return make


def entries(root, *namespaces):
    return sorted(p for ns in namespaces if (root / ns).is_dir() for p in (root / ns).glob("*.bin"))


def _emulator_source(kernels):
    """The generated CUDA C++ of the test kernel (no build)."""
    sys.path.insert(0, str(kernels))
    try:
        from hc_kernels import affine
    finally:
        sys.path.remove(str(kernels))
    x = np.zeros(64, np.float32)
    return tw.compile(affine, (x, x.copy(), 16), target="cuda-emulated").code


def _truncate(b):
    return b[:len(b) // 2]


def _flip(b):
    b, mid = bytearray(b), len(b) // 2
    for i in range(16):
        b[mid + i] ^= 0xFF
    return bytes(b)


def _constant(b):
    assert b.count(CONSTANT) == 1, "the constant to patch is not in the entry"
    return b.replace(CONSTANT, PATCHED)


DAMAGES = {"truncate": _truncate, "flip16": _flip, "empty": lambda b: b"",
           "garbage": lambda b: np.random.default_rng(18).bytes(len(b)), "directory": None, "constant": _constant}


def damage(path, how):
    if how == "directory":
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("not an entry")
    else:
        path.write_bytes(DAMAGES[how](path.read_bytes()))


def sound(path):
    assert path.is_file() and cache.check(path) is None, cache.check(path)


def one_warning(out, match="damaged"):
    assert len(out["warnings"]) == 1 and match in out["warnings"][0], out["warnings"]


# ---- cuda-emulated ------------------------------------------------------------------------------------

@pytest.fixture
def emulated(populated, kernels, monkeypatch):
    """(cache root, its library entry, its precompiled header entry)."""
    root = populated("cuda-emulated")
    from tilewise.backends.cuda import emulator
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(root))
    e = emulator.cache_entries(_emulator_source(kernels))
    assert e["library"].is_file() and e["header"].is_file()
    return root, e["library"], e["header"]


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_emulator_library_is_rebuilt(emulated, kernels, how):
    root, lib, header = emulated
    if how == "constant":  # sanity: the patch is one a loader would take, with a wrong answer
        assert CONSTANT in lib.read_bytes()
    damage(lib, how)
    out = run(kernels, root, "cuda-emulated")
    one_warning(out)
    assert out["compiles"] == 1  # the library; the precompiled header was a verified hit
    sound(lib)
    sound(header)
    quiet = run(kernels, root, "cuda-emulated")  # and the replacement is a hit
    assert quiet["compiles"] == 0 and quiet["warnings"] == []


@pytest.mark.parametrize("how", ["truncate", "flip16"])
def test_a_damaged_precompiled_header_is_rebuilt(emulated, kernels, how):
    root, lib, header = emulated
    damage(header, how)
    lib.unlink()
    out = run(kernels, root, "cuda-emulated")
    one_warning(out)
    assert out["compiles"] == 2  # the header, then the library
    sound(lib)
    sound(header)


def test_a_precompiled_header_that_gxx_rejects_is_rebuilt_once(emulated, kernels):
    """A sound entry whose bytes g++ still refuses (half a .gch, with a matching digest): dropped, built
    again, and the kernel compiled against the new one."""
    root, lib, header = emulated
    payload = header.read_bytes()[cache._HEADER.size:]
    half = payload[:len(payload) // 2]
    header.write_bytes(cache._HEADER.pack(cache.MAGIC, bytes.fromhex(header.stem), len(half),
                                          hashlib.sha256(half).digest()) + half)
    sound(header)
    lib.unlink()
    out = run(kernels, root, "cuda-emulated")
    one_warning(out, "rejected")
    assert out["compiles"] == 3  # the library against the bad header, the header, the library again
    sound(header)
    assert header.stat().st_size > len(payload) * 3 // 4  # a whole header again (its bytes vary a little)


def _read_only(root):
    for d, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(d, name), stat.S_IRUSR | stat.S_IRGRP)
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR)


def _writable(root):
    for d, _, _ in os.walk(root):
        os.chmod(d, stat.S_IRWXU)


def _snapshot(root):
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.parametrize("backend", ["cuda-emulated", "cpu"])
def test_a_read_only_cache_serves_its_hits(populated, kernels, backend):
    root = populated(backend)
    before = _snapshot(root)
    _read_only(root)
    try:
        hit = run(kernels, root, backend, mode="ro")
        miss = run(kernels, root, backend, T=8, mode="ro")  # another specialisation: not in the cache
    finally:
        _writable(root)
    assert hit["warnings"] == [] and hit["compiles"] == 0 and not hit["codegen"]
    assert len(miss["warnings"]) <= 1
    if backend == "cuda-emulated":
        assert miss["compiles"] == 1  # the library only: the header came from the read-only cache
    else:
        assert miss["codegen"]
    assert _snapshot(root) == before


def test_processes_filling_one_empty_cache_see_no_damage(kernels, tmp_path):
    """Three cold processes at once write the same library and header entries: each entry is renamed
    into place whole, so none of them meets a bad one."""
    if "cuda-emulated" not in backends.available():
        pytest.skip("no cuda-emulated backend here")
    root = tmp_path / "cache"
    env = {**os.environ, "TILEWISE_CACHE_DIR": str(root), "TILEWISE_BACKEND": "cuda-emulated"}
    procs = [subprocess.Popen([sys.executable, "-c", RUN, str(kernels), "16", "rw"], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        got = json.loads(out.strip().splitlines()[-1])
        assert got["right"] and got["warnings"] == []
    for p in entries(root, "cuda-emulated"):
        sound(p)
    assert len(entries(root, "cuda-emulated")) == 2


# ---- cpu ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", list(DAMAGES))
def test_damaged_cpu_entries_are_rebuilt(populated, kernels, how):
    """Every entry of the kernel (object code and metadata keyed by the Tile IR, object code and
    optimised IR keyed by the LLVM IR) damaged at once: one warning, all of them replaced."""
    root = populated("cpu")
    victims = entries(root, "cpu", "cpu-kernel")
    assert len(victims) == 4
    if how == "constant":
        victims = [p for p in victims if CONSTANT in p.read_bytes()]
        assert len(victims) == 2  # the two copies of the object code
    for p in victims:
        damage(p, how)
    out = run(kernels, root, "cpu")
    one_warning(out)
    assert out["codegen"]
    for p in victims:
        sound(p)


# ---- cubins -------------------------------------------------------------------------------------------

def test_a_damaged_cubin_is_recompiled(tmp_path, monkeypatch):
    pytest.importorskip("cuda.core")
    pytest.importorskip("cuda.bindings.nvrtc")
    monkeypatch.setenv("TILEWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(cache, "_WARNED", set())
    sys.path.insert(0, str(tmp_path))
    (tmp_path / "hc_cubin.py").write_text(KERNELS)
    try:
        from hc_cubin import affine
    finally:
        sys.path.remove(str(tmp_path))
    x = np.zeros(64, np.float32)
    cold = tw.compile(affine, (x, x.copy(), 16), target="cuda:sm_80")
    (entry,) = entries(tmp_path / "cache", "cuda")
    damage(entry, "flip16")
    affine.runtime_cache.clear()
    with pytest.warns(RuntimeWarning, match="damaged"):
        warm = tw.compile(affine, (x, x.copy(), 16), target="cuda:sm_80")
    assert warm.binary == cold.binary and warm.resources == cold.resources
    sound(entry)
    affine.runtime_cache.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tw.compile(affine, (x, x.copy(), 16), target="cuda:sm_80")
