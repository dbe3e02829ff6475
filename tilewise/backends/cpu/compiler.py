"""LLVM plumbing: one host target machine, the O3 pipeline, and MCJIT engines that own compiled kernels.

llvmlite is not thread-safe while compiling, so every step that touches LLVM runs under one lock."""
from __future__ import annotations

import ctypes.util
import threading

import llvmlite
import llvmlite.binding as llvm

_LOCK = threading.RLock()
_STATE = {}


def _init():
    """Initialise LLVM once; returns the shared target machine used for optimising and emitting."""
    if "tm" not in _STATE:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        libm = ctypes.util.find_library("m")
        if libm:  # math functions the code calls by name (erff, log1pf, ...) resolve from here
            llvm.load_library_permanently(libm)
        _STATE["tm"] = _target_machine()
    return _STATE["tm"]


def _target_machine():
    """A target machine for this CPU (its name and features, so the vectoriser may use AVX2/AVX-512
    where the host has them). An MCJIT engine takes ownership of its target machine, so each engine
    gets its own."""
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, reloc="default", codemodel="jitdefault", jit=True)


def target_description():
    tm = _init()
    return f"{llvm.get_process_triple()} {llvm.get_host_cpu_name()} (llvmlite {llvmlite.__version__}, LLVM " \
           f"{'.'.join(map(str, llvm.llvm_version_info))}); {tm.target_data}"


class Compiled:
    """A JIT-compiled module: the optimised IR text, the entry point's address, and (lazily) object code."""

    def __init__(self, ir_text, entry):
        with _LOCK:
            tm = _init()
            mod = llvm.parse_assembly(ir_text)
            mod.triple = llvm.get_process_triple()
            mod.data_layout = str(tm.target_data)
            mod.verify()
            pto = llvm.create_pipeline_tuning_options(speed_level=3)
            pto.loop_vectorization = True
            pto.slp_vectorization = True
            pb = llvm.create_pass_builder(tm, pto)
            pb.getModulePassManager().run(mod, pb)
            self.code = str(mod)
            self.engine = llvm.create_mcjit_compiler(mod, _target_machine())
            self.engine.finalize_object()
            self.address = self.engine.get_function_address(entry)
        self._binary = None

    @property
    def binary(self):
        """Object code for the host (what the JIT runs), emitted on first use."""
        if self._binary is None:
            with _LOCK:
                tm = _init()
                mod = llvm.parse_assembly(self.code)
                self._binary = bytes(tm.emit_object(mod))
        return self._binary
