"""CUDA C++ -> cubin with NVRTC through cuda.core's Program: no GPU, no driver and no CUDA toolkit
needed, only the pip wheels of the [cuda] extra (cuda-core, cuda-bindings, nvidia-cuda-nvrtc)."""
from __future__ import annotations

import io
import json
import re

from ...errors import TileCompilerExecutionError, TileLaunchError, TileUnsupportedError
from ...support import diskcache
from .emulator import INCLUDE

NAMESPACE = "cuda"
CACHE_VERSION = "cuda-1"   # bump when what a given source compiles to changes outside the key


def _program():
    try:
        from cuda.core import Program, ProgramOptions
    except ImportError:
        try:  # cuda-core before 0.4 kept these under .experimental
            from cuda.core.experimental import Program, ProgramOptions
        except ImportError:
            raise TileLaunchError("compiling for a CUDA target needs NVRTC: pip install 'tilewise[cuda]' "
                                  "(cuda-core, cuda-bindings, nvidia-cuda-nvrtc)") from None
    return Program, ProgramOptions


def version():
    """NVRTC's (major, minor) and the architectures it can target, e.g. ((13, 0), [75, 80, ...])."""
    from cuda.bindings import nvrtc
    _, major, minor = nvrtc.nvrtcVersion()
    return (major, minor), list(nvrtc.nvrtcGetSupportedArchs()[1])


def parse_arch(target):
    """"cuda:sm_90" -> "sm_90"; a bare "cuda" gets sm_80."""
    arch = target.split(":", 1)[1] if target and ":" in target else "sm_80"
    if not re.fullmatch(r"sm_\d+[af]?", arch):
        raise TileLaunchError(f"unknown CUDA target '{target}'; write it like 'cuda:sm_90'")
    return arch


_PTXAS = {"registers": r"Used (\d+) registers", "stack_bytes": r"(\d+) bytes stack frame",
          "spill_store_bytes": r"(\d+) bytes spill stores", "spill_load_bytes": r"(\d+) bytes spill loads"}


def ptxas_info(log: str) -> dict:
    """What ptxas -v reports for the kernel: registers, stack frame (local memory) and spills, in bytes."""
    out = {}
    for key, pattern in _PTXAS.items():
        m = re.search(pattern, log)
        if m:
            out[key] = int(m.group(1))
    return out


def _headers() -> str:
    return "".join(p.read_text() for p in sorted(INCLUDE.iterdir()) if p.is_file())


def compile_cubin(code: str, arch: str, name="tilewise"):
    """(cubin bytes, ptxas_info of the kernel). Cubins are kept in the disk cache (namespace "cuda"),
    keyed by the source, the headers it includes, the arch, NVRTC's version and the options."""
    # fma=False: the reference rounds every multiply and add on its own (next step: allow contraction
    # where the user opts into fast math).
    options = dict(arch=arch, std="c++17", fma=False, ptxas_options="-v")
    key = None
    try:
        key = ("cuda cubin", CACHE_VERSION, code, _headers(), repr(sorted(options.items())), repr(version()[0]))
    except Exception:  # no NVRTC to ask: compiling below raises the error that says so
        pass
    if key is not None:
        hit = diskcache.get(NAMESPACE, key)
        if hit is not None:
            try:  # the digest vouches for the bytes; this for their layout (ptxas report, then the cubin)
                n = int.from_bytes(hit[:4], "little")
                info, cubin = json.loads(hit[4:4 + n]), hit[4 + n:]
                if len(hit) >= 4 and isinstance(info, dict) and cubin[:4] == b"\x7fELF":
                    return cubin, info
            except ValueError:
                pass
            diskcache.reject(NAMESPACE, key, "not a ptxas report and a cubin")
    Program, ProgramOptions = _program()
    opts = ProgramOptions(name=name, include_path=[str(INCLUDE)], **options)
    log = io.StringIO()
    try:
        cubin = bytes(Program(code, "c++", options=opts).compile("cubin", logs=log).code)
    except Exception as e:  # NVRTC reports through its own exception types; sort by message
        text = str(e)
        if "gpu-architecture" in text or "invalid value for --gpu" in text:
            have = version()
            raise TileUnsupportedError(
                f"NVRTC {have[0][0]}.{have[0][1]} cannot compile for {arch} (it supports sm_{min(have[1])} and "
                "newer); for sm_70 install the CUDA 12 wheels: pip install 'tilewise[cuda12]'") from None
        raise TileCompilerExecutionError(f"internal error: NVRTC rejected the generated CUDA C++:\n"
                                         f"{text[-4000:]}") from e
    info = ptxas_info(log.getvalue())
    if key is not None:
        meta = json.dumps(info).encode()
        diskcache.put(NAMESPACE, key, len(meta).to_bytes(4, "little") + meta + cubin)
    return cubin, info


def compile_ptx(code: str, arch: str, name="tilewise.cu") -> str:
    """The PTX NVRTC makes of `code` for `arch` (for inspection and tests: which instructions the fast
    paths became). Straight through cuda.bindings' NVRTC: cuda.core's Program loads the driver for PTX."""
    from cuda.bindings import nvrtc
    ok = nvrtc.nvrtcResult.NVRTC_SUCCESS
    err, prog = nvrtc.nvrtcCreateProgram(code.encode(), name.encode(), 0, [], [])
    if err != ok:
        raise RuntimeError(f"internal error: nvrtcCreateProgram failed ({err})")
    try:
        opts = [f"--gpu-architecture=compute_{arch[3:]}".encode(), b"-std=c++17", b"--fmad=false",
                f"-I{INCLUDE}".encode()]
        if nvrtc.nvrtcCompileProgram(prog, len(opts), opts)[0] != ok:
            _, size = nvrtc.nvrtcGetProgramLogSize(prog)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(prog, log)
            raise TileCompilerExecutionError(f"internal error: NVRTC rejected the generated CUDA C++:\n"
                                             f"{log.decode()[-4000:]}")
        _, size = nvrtc.nvrtcGetPTXSize(prog)
        buf = b" " * size
        nvrtc.nvrtcGetPTX(prog, buf)
        return buf.decode().rstrip("\0")
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
