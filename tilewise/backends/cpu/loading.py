"""Object code to a callable entry point, through the disk cache, without LLVM where it can.

A compile optimises the module and emits object code once (compiler.py); what runs is that object, so
what the disk cache stores (namespace "cpu") is exactly what runs. objload.py maps it into memory
itself, so a warm start loads neither LLVM nor llvmlite (35-45 ms); objects it does not take go through
MCJIT. The key is the unoptimised IR (it already encodes the source, the specialisation and the poison
setting) plus everything that changes the machine code: tilewise's and this backend's versions and
source, LLVM's version, the triple, the target CPU's name and features (the host's, or TILEWISE_CPU's
level), and the host's last-level cache size (streaming.py's threshold).

Those last four come from LLVM. So that a warm start need not load it to build a key, they are cached
too (namespace "cpu-host"), under a fingerprint read without LLVM: llvmlite's shared library (path,
size, modification time) and the first processor's identity and flags in /proc/cpuinfo. Where there is
no such fingerprint (not Linux), they are asked of LLVM each time."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ...support import diskcache
from . import objload
from .target import cpu_choice

# Bump when codegen or the pipeline changes what a given IR text compiles to.
BACKEND_VERSION = "cpu-4"
ENTRY = "tw_run"  # the exported function that runs a range of blocks (codegen.py)
NAMESPACE, HOST_NAMESPACE = "cpu", "cpu-host"
_STATE = {}


def loader_choice():
    """TILEWISE_CPU_LOADER: "auto" (default: own loader, MCJIT for what it does not take), "native" (own
    loader only; an object it cannot load is an error, for tests), or "mcjit"."""
    choice = os.environ.get("TILEWISE_CPU_LOADER", "auto").strip().lower() or "auto"
    if choice not in ("auto", "native", "mcjit"):
        from ...errors import TileLaunchError
        raise TileLaunchError(f"TILEWISE_CPU_LOADER must be auto, native or mcjit, got {choice!r}")
    return choice


class Compiled:
    """A kernel's object code loaded for running: the entry point's address, the object code (`binary`)
    and, on request, the optimised IR text (`code`, from `llvm_text()` when not known). `loader` says
    which loader mapped it ("native" or "mcjit")."""

    def __init__(self, obj, llvm_text, code=None):
        self.binary, self._llvm_text, self._code = obj, llvm_text, code
        self.address, choice = None, loader_choice()
        if choice != "mcjit":
            try:
                self._image = objload.Image(obj)
                self.address, self.loader = self._image.symbol(ENTRY), "native"
            except objload.Unsupported as e:
                if choice == "native":
                    raise RuntimeError(f"internal error: the object loader cannot load this kernel ({e})") from e
        if self.address is None:
            from .compiler import mcjit_load
            self._engine, self.address = mcjit_load(obj, ENTRY)
            self.loader = "mcjit"
        if not self.address:
            raise RuntimeError(f"internal error: compiled object code has no '{ENTRY}' function")

    @classmethod
    def from_ir(cls, ir_text):
        """Object code for unoptimised IR text: from the disk cache, else optimised and emitted (and stored)."""
        key = (*cache_key_parts(), ir_text)
        obj, code = diskcache.get(NAMESPACE, (*key, "object")), None
        if obj is None:
            from .compiler import compile_object
            obj, code = compile_object(ir_text)
            diskcache.put(NAMESPACE, (*key, "object"), obj)
            diskcache.put(NAMESPACE, (*key, "code"), code.encode())
        return cls(obj, lambda: ir_text, code)

    @property
    def asm(self):
        """The host assembly (generated again on request: the cache keeps object code only)."""
        from .compiler import assembly
        return assembly(self._llvm_text())

    @property
    def code(self):
        """The optimised LLVM IR (from the cache where it has it, else optimised again)."""
        if self._code is None:
            ir_text = self._llvm_text()
            cached = diskcache.get(NAMESPACE, (*cache_key_parts(), ir_text, "code"))
            if cached is not None:
                self._code = cached.decode()
            else:
                from .compiler import compile_object
                self._code = compile_object(ir_text)[1]
        return self._code


def cache_key_parts():
    """Everything besides the IR text that decides the object code."""
    cpu = cpu_choice()
    if ("key", cpu) not in _STATE:
        from ...support import __version__
        _STATE["key", cpu] = (f"tilewise {__version__}", BACKEND_VERSION, _source_digest(), *_host_description(),
                              f"llc {last_level_cache_bytes()}")
    return _STATE["key", cpu]


def last_level_cache_bytes(root="/sys/devices/system/cpu/cpu0/cache"):
    """The size of the highest-level cache the first core sees (Linux sysfs), or None where unknown."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    best = (0, None)
    for d in Path(root).glob("index*"):
        try:
            level, size = int((d / "level").read_text()), (d / "size").read_text().strip()
            nbytes = int(size[:-1]) * units[size[-1]] if size[-1:] in units else int(size)
        except (OSError, ValueError):
            continue
        best = max(best, (level, nbytes))
    return best[1]


def _source_digest():
    """A digest of this backend's own source: an edited code generator never meets stale object code,
    even without a version bump (a development checkout keeps its version string)."""
    import hashlib
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _host_description():
    fingerprint = _host_fingerprint()
    if fingerprint is not None:
        cached = diskcache.get(HOST_NAMESPACE, fingerprint)
        if cached is not None:
            try:
                return tuple(json.loads(cached))
            except (ValueError, TypeError):
                diskcache.reject(HOST_NAMESPACE, fingerprint, "not a host description")
    from .compiler import host_description
    description = host_description()
    if fingerprint is not None:
        diskcache.put(HOST_NAMESPACE, fingerprint, json.dumps(description).encode())
    return description


def _host_fingerprint():
    """What identifies LLVM's answers without asking it, or None where it is not known (not Linux)."""
    import importlib.util
    spec = importlib.util.find_spec("llvmlite")
    if spec is None or not spec.origin:
        return None
    libs = sorted((Path(spec.origin).parent / "binding").glob("libllvmlite*"))
    try:
        with open("/proc/cpuinfo", "rb") as f:
            first = f.read(1 << 16).split(b"\n\n", 1)[0]  # the first processor's block only
    except OSError:
        return None
    if not libs or not first:
        return None
    st = libs[0].stat()
    cpu = b"\n".join(line for line in first.splitlines()
                     if not line.lower().startswith((b"cpu mhz", b"bogomips")))
    return (str(libs[0]), str(st.st_size), str(st.st_mtime_ns), cpu, f"target {cpu_choice()}")
