"""LLVM plumbing: one target machine (the host's CPU, or the x86-64 level TILEWISE_CPU names), the O3
pipeline, object code, and MCJIT engines (for the objects loading.py's own loader does not take).

Only a cache miss comes here: what the disk cache keeps (loading.py) is the object code this module
emits, so a warm start neither optimises nor generates code, nor loads LLVM at all.

llvmlite is not thread-safe while compiling, so every step that touches LLVM runs under one lock."""
from __future__ import annotations

import threading

import llvmlite
import llvmlite.binding as llvm

from .target import cpu_choice

_LOCK = threading.RLock()
_STATE = {}


# TILEWISE_CPU's x86-64 microarchitecture levels: (host features each needs, vector bytes, vector registers).
LEVELS = {
    "x86-64": ((), 16, 16),
    "x86-64-v2": (("sse4.2", "popcnt"), 16, 16),
    "x86-64-v3": (("avx2", "fma", "bmi2"), 32, 16),
    "x86-64-v4": (("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"), 64, 32),
}


def _init():
    """Initialise LLVM once; returns the shared target machine (for the chosen target CPU) used for
    optimising and emitting."""
    cpu = cpu_choice()
    if ("tm", cpu) not in _STATE:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        _load_libm()
        _STATE["tm", cpu] = _target_machine()
    return _STATE["tm", cpu]


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
    """A target machine for the target CPU (the host's name and features by default, so the vectoriser
    may use AVX2/AVX-512 where the host has them). An MCJIT engine takes ownership of its target machine,
    so each engine gets its own."""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    name, features = _target_cpu()
    return target.create_target_machine(cpu=name, features=features, opt=3, reloc="default",
                                        codemodel="jitdefault", jit=True)


def _host_features():
    if "features" not in _STATE:
        _STATE["features"] = llvm.get_host_cpu_features().flatten()
    return _STATE["features"]


def _target_cpu():
    """(LLVM CPU name, feature string) for TILEWISE_CPU: the host's own, or an x86-64 level the host can
    run (code for a level above the host's would die of an illegal instruction, so it is refused)."""
    choice = cpu_choice()
    if choice == "host":
        return llvm.get_host_cpu_name(), _host_features()
    from ...errors import TileLaunchError
    if choice not in LEVELS or not llvm.get_process_triple().startswith("x86_64"):
        raise TileLaunchError(f"TILEWISE_CPU={choice!r} is not a target this host can run; use 'host' (the "
                              f"default) or, on x86-64, one of: {', '.join(LEVELS)}")
    try:
        host = llvm.get_host_cpu_features()
    except RuntimeError:
        host = {}
    missing = [f for f in LEVELS[choice][0] if not host.get(f)]
    if missing:
        raise TileLaunchError(f"TILEWISE_CPU={choice} needs {', '.join(missing)}, which this host lacks; "
                              "pick a lower level or 'host'")
    return choice, ""


def vector_shape():
    """(vector bytes, vector registers) of the target CPU: 64 and 32 with AVX-512, 32 and 16 with AVX,
    else 16 and 16 (SSE, NEON)."""
    choice = cpu_choice()
    if choice != "host":
        _target_cpu()  # refuses a level the host cannot run
        return LEVELS[choice][1:]
    _init()
    try:
        feats = llvm.get_host_cpu_features()
    except RuntimeError:  # LLVM cannot tell on this host: assume 16-byte vectors, which every target has
        return 16, 16
    if feats.get("avx512f"):
        return 64, 32
    if feats.get("avx"):
        return 32, 16
    return 16, 16


def lacks_f16c():
    """Whether the target is an x86-64 CPU without F16C, where LLVM calls libgcc for float16 conversions."""
    if not llvm.get_process_triple().startswith("x86_64"):
        return False
    choice = cpu_choice()
    if choice != "host":
        return choice in ("x86-64", "x86-64-v2")
    return "+f16c" not in _host_features()


def host_triple():
    return llvm.get_process_triple()


def host_description():
    """What decides the object code besides the IR and tilewise's own source: LLVM's version, the triple,
    and the target CPU's name and features."""
    return ("llvm " + ".".join(map(str, llvm.llvm_version_info)), llvm.get_process_triple(), *_target_cpu())


def target_description():
    tm = _init()
    return f"{llvm.get_process_triple()} {_target_cpu()[0]} (llvmlite {llvmlite.__version__}, LLVM " \
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


def mcjit_load(obj, entry):
    """(engine, address of the function `entry`) for object code loaded into an MCJIT engine, which links
    it and resolves its calls (the printf callback, memset/memcpy) against the process's symbols. Keep
    the engine alive as long as the code runs."""
    with _LOCK:
        _init()
        engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), _target_machine())
        engine.add_object_file(llvm.ObjectFileRef.from_data(obj))
        engine.finalize_object()
        return engine, engine.get_function_address(entry)
