"""LLVM plumbing: one host target machine, the O3 pipeline, object code, and MCJIT engines (for the
objects loading.py's own loader does not take).

Only a cache miss comes here: what the disk cache keeps (loading.py) is the object code this module
emits, so a warm start neither optimises nor generates code, nor loads LLVM at all.

llvmlite is not thread-safe while compiling, so every step that touches LLVM runs under one lock."""
from __future__ import annotations

import threading

import llvmlite
import llvmlite.binding as llvm

from .loading import ENTRY

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


def host_triple():
    return llvm.get_process_triple()


def host_description():
    """What decides the object code besides the IR and tilewise's own source: LLVM's version, the triple,
    and the host CPU's name and features."""
    return ("llvm " + ".".join(map(str, llvm.llvm_version_info)), llvm.get_process_triple(),
            llvm.get_host_cpu_name(), _host_features())


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


def compile_object(ir_text):
    """(object code, optimised IR text) for unoptimised IR text."""
    mod = optimise(ir_text)
    return emit_object(mod), str(mod)


def assembly(ir_text):
    """The host assembly of unoptimised IR text, after the same pipeline as its object code."""
    mod = optimise(ir_text)
    with _LOCK:
        return _init().emit_assembly(mod)


def mcjit_load(obj):
    """(engine, entry address) for object code loaded into an MCJIT engine, which links it and resolves
    its calls (the printf callback, memset/memcpy) against the process's symbols. Keep the engine alive
    as long as the code runs."""
    with _LOCK:
        _init()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        return engine, engine.get_function_address(ENTRY)
