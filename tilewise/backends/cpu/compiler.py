"""LLVM plumbing: one host target machine, the O3 pipeline, object code, and MCJIT engines that load it.

A compile optimises the module and emits object code once; the engine loads that object, so what the
disk cache stores (runtime/cache.py, namespace "cpu") is exactly what runs, and a warm hit runs no LLVM
optimisation or code generation at all. The key is the unoptimised IR (it already encodes the source,
the specialisation and the poison setting) plus everything that changes the machine code: tilewise's
and this backend's versions, LLVM's version, the triple, and the host CPU's name and features.

llvmlite is not thread-safe while compiling, so every step that touches LLVM runs under one lock."""
from __future__ import annotations

import threading
from pathlib import Path

import llvmlite
import llvmlite.binding as llvm

from ...runtime import cache as diskcache

# Bump when codegen or the pipeline below changes what a given IR text compiles to.
BACKEND_VERSION = "cpu-3"
ENTRY = "tw_run"  # the exported function that runs a range of blocks (codegen.py)
NAMESPACE = "cpu"
_LOCK = threading.RLock()
_STATE = {}


def _init():
    """Initialise LLVM once; returns the shared target machine used for optimising and emitting."""
    if "tm" not in _STATE:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _load_libm()
        _STATE["tm"] = _target_machine()
    return _STATE["tm"]


def _load_libm():
    """Math functions the code calls by name (erff, log1pf, ...) resolve from libm. Its usual Linux name
    is tried first: find_library runs `ldconfig -p`, a few ms of every process's first compile."""
    for find in (lambda: "libm.so.6", _find_libm):
        name = find()
        if name:
            try:
                llvm.load_library_permanently(name)
                return
            except RuntimeError:
                continue


def _find_libm():
    import ctypes.util  # imports subprocess: ~6 ms that Linux processes need not pay
    return ctypes.util.find_library("m")


def _target_machine():
    """A target machine for this CPU (its name and features, so the vectoriser may use AVX2/AVX-512
    where the host has them). An MCJIT engine takes ownership of its target machine, so each engine
    gets its own."""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=_host_features(),
                                        opt=3, reloc="default", codemodel="jitdefault", jit=True)


def _host_features():
    if "features" not in _STATE:
        _STATE["features"] = llvm.get_host_cpu_features().flatten()
    return _STATE["features"]


def _source_digest():
    """A digest of this backend's own source: an edited code generator never meets stale object code,
    even without a version bump (a development checkout keeps its version string)."""
    import hashlib
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def cache_key_parts():
    """Everything besides the IR text that decides the object code."""
    if "key" not in _STATE:
        from ... import __version__
        _STATE["key"] = (f"tilewise {__version__}", BACKEND_VERSION, _source_digest(),
                         "llvm " + ".".join(map(str, llvm.llvm_version_info)), llvm.get_process_triple(),
                         llvm.get_host_cpu_name(), _host_features())
    return _STATE["key"]


def target_description():
    tm = _init()
    return f"{llvm.get_process_triple()} {llvm.get_host_cpu_name()} (llvmlite {llvmlite.__version__}, LLVM " \
           f"{'.'.join(map(str, llvm.llvm_version_info))}); {tm.target_data}"


def optimise(ir_text):
    """The module after the O3 pipeline (with loop and SLP vectorisation, without generic unrolling)."""
    with _LOCK:
        tm = _init()
        mod = llvm.parse_assembly(ir_text)
        mod.triple = llvm.get_process_triple()
        mod.data_layout = str(tm.target_data)
        mod.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pto.loop_vectorization = True
        pto.slp_vectorization = True
        # No generic unrolling: it fully unrolls every vectorised loop over a tile row. Measured in one
        # process, interleaved, one thread: compile 348 -> 108 ms (softmax 4x1024), 449 -> 119 (layer
        # norm), 333 -> 212 (64x64x32 matmul), run time equal within 10% either way. The vectoriser
        # still interleaves its loops.
        pto.loop_unrolling = False
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(mod, pb)
        return mod


def emit_object(mod) -> bytes:
    with _LOCK:
        return bytes(_init().emit_object(mod))


class Compiled:
    """A kernel's object code loaded into an MCJIT engine: the entry point's address, the object code
    (`binary`) and, on request, the optimised IR text (`code`, from `llvm_text()` when not known)."""

    def __init__(self, obj, llvm_text, code=None):
        self.binary, self._llvm_text, self._code = obj, llvm_text, code
        with _LOCK:
            _init()
            # An engine over an empty module, then the object: MCJIT links it and resolves its calls
            # (the printf callback, memset/memcpy) against the process's symbols.
            self.engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
            self.engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
            self.engine.finalize_object()
            self.address = self.engine.get_function_address(ENTRY)
        if not self.address:
            raise RuntimeError(f"internal error: compiled object code has no '{ENTRY}' function")

    @classmethod
    def from_ir(cls, ir_text):
        """Object code for unoptimised IR text: from the disk cache, else optimised and emitted (and stored)."""
        key = (*cache_key_parts(), ir_text)
        obj, code = diskcache.get(NAMESPACE, (*key, "object")), None
        if obj is None:
            mod = optimise(ir_text)
            obj = emit_object(mod)
            code = str(mod)
            diskcache.put(NAMESPACE, (*key, "object"), obj)
            diskcache.put(NAMESPACE, (*key, "code"), code.encode())
        return cls(obj, lambda: ir_text, code)

    @property
    def code(self):
        """The optimised LLVM IR (from the cache where it has it, else optimised again)."""
        if self._code is None:
            ir_text = self._llvm_text()
            cached = diskcache.get(NAMESPACE, (*cache_key_parts(), ir_text, "code"))
            self._code = cached.decode() if cached is not None else str(optimise(ir_text))
        return self._code
