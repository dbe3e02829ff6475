"""cuda.core's `Program` -> `ObjectCode` -> `Kernel` -> `launch` for a user's own CUDA C++, with its
names and meanings, on a GPU and on the emulated device.

- NVRTC (cuda.bindings, the pip wheel) compiles to cubin or PTX; no GPU, driver or toolkit is needed
  for that. A GPU loads the result through cuda.core (driver_cuda.py).
- The emulated device builds the same source with the host compiler against emulator.h
  (program_emulated.py, emulator.build_user) and runs it on the stream's worker thread.

Launch arguments are checked against the kernel's parameters before anything is queued. Where the
parameters are known (always on the emulated device, which asks the built library; on a GPU, for a
kernel declared in the Program's source with types this module can read), a plain Python int, float or
bool becomes the declared type and must fit it exactly; NumPy scalars must have the declared size and
kind. Where they are not known (ObjectCode.from_cubin/from_ptx, templates on a GPU), cuda.core's rule:
a Python int is a pointer-sized integer, a float a double, a NumPy scalar its dtype."""
from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np

from ..errors import TileError, TileLaunchError
from ..support import diskcache
from .array import DeviceArray
from .device import Device, Stream, check_stream, resolve_stream


class CompileError(TileError, RuntimeError):
    """NVRTC or the emulator's compiler rejected a Program's source; the message holds its log."""


class KernelArgumentError(TileLaunchError, TypeError):
    """A launch argument that the kernel cannot take (count, type, range), named in the message."""


@dataclasses.dataclass
class ProgramOptions:
    """cuda.core's ProgramOptions (the common subset): None leaves NVRTC's default. On the emulated device
    only `name`, `define_macro`, `undefine_macro`, `include_path` and `pre_include` change the build (it
    is always C++20 for the host compiler, whatever `std` says)."""
    name: str | None = None
    arch: str | None = None
    std: str | None = None
    define_macro: object = None
    undefine_macro: object = None
    include_path: object = None
    pre_include: object = None
    debug: bool | None = None
    lineinfo: bool | None = None
    relocatable_device_code: bool | None = None
    ftz: bool | None = None
    prec_sqrt: bool | None = None
    prec_div: bool | None = None
    fma: bool | None = None
    use_fast_math: bool | None = None
    max_register_count: int | None = None
    disable_warnings: bool | None = None
    restrict: bool | None = None
    device_as_default_execution_space: bool | None = None

    def _list(self, field):
        v = getattr(self, field)
        return [] if v is None else [v] if isinstance(v, (str, tuple)) else list(v)

    def _macros(self):
        out = []
        for m in self._list("define_macro"):
            out.append(f"{m[0]}={m[1]}" if isinstance(m, tuple) else m)
        return out

    def nvrtc_flags(self, arch):
        flags = [f"--gpu-architecture={arch}"]
        if self.std:
            flags.append(f"-std={self.std}")
        flags += [f"-D{m}" for m in self._macros()]
        flags += [f"-U{m}" for m in self._list("undefine_macro")]
        flags += [f"-I{p}" for p in self._list("include_path")]
        flags += [f"--pre-include={h}" for h in self._list("pre_include")]
        switches = {"debug": "-G", "lineinfo": "-lineinfo", "relocatable_device_code": "-rdc=true",
                    "use_fast_math": "--use_fast_math", "disable_warnings": "-w", "restrict": "--restrict",
                    "device_as_default_execution_space": "-default-device"}
        flags += [flag for field, flag in switches.items() if getattr(self, field)]
        for field, flag in (("ftz", "--ftz"), ("prec_sqrt", "--prec-sqrt"), ("prec_div", "--prec-div"),
                            ("fma", "--fmad")):
            if getattr(self, field) is not None:
                flags.append(f"{flag}={'true' if getattr(self, field) else 'false'}")
        if self.max_register_count is not None:
            flags.append(f"--maxrregcount={int(self.max_register_count)}")
        return flags

    def emulator_flags(self):
        return ([f"-D{m}" for m in self._macros()] + [f"-U{m}" for m in self._list("undefine_macro")] +
                [f"-I{p}" for p in self._list("include_path")])


def _include_digest(options):
    """A digest of every file under the include paths: a changed header must miss the disk cache."""
    h = hashlib.sha256()
    for root in options._list("include_path") + [str(Path(p).parent) for p in options._list("pre_include")]:
        for f in sorted(Path(root).rglob("*")) if Path(root).is_dir() else []:
            if f.is_file() and f.stat().st_size < 1 << 22:
                h.update(str(f).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


# ---- reading kernels out of the source ---------------------------------------------------------------

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/|\"(?:\\.|[^\"\\])*\"", re.S)
_SCALARS = {
    "bool": (4, 1), "char": (2, 1), "signed char": (2, 1), "unsigned char": (3, 1), "int8_t": (2, 1),
    "uint8_t": (3, 1), "short": (2, 2), "unsigned short": (3, 2), "int16_t": (2, 2), "uint16_t": (3, 2),
    "int": (2, 4), "signed": (2, 4), "signed int": (2, 4), "unsigned": (3, 4), "unsigned int": (3, 4),
    "int32_t": (2, 4), "uint32_t": (3, 4), "long": (2, 8), "long long": (2, 8), "long int": (2, 8),
    "long long int": (2, 8), "int64_t": (2, 8), "ptrdiff_t": (2, 8), "unsigned long": (3, 8),
    "unsigned long long": (3, 8), "unsigned long int": (3, 8), "unsigned long long int": (3, 8),
    "uint64_t": (3, 8), "size_t": (3, 8), "float": (5, 4), "double": (5, 8)}
POINTER, SIGNED, UNSIGNED, BOOL, FLOAT = 1, 2, 3, 4, 5  # program_emulated.HEADER's kinds


@dataclasses.dataclass
class _Declared:
    qualname: str       # with its namespaces
    extern_c: bool
    template: bool
    params: list        # [(name, (kind, size) or None)]


def _split_params(text):
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<([":
            depth += 1
        elif ch in ">)]":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip() not in ("", "void")]


def _param(text):
    """(name, (kind, size) or None) of one declared parameter."""
    text = re.sub(r"=.*$", "", text, flags=re.S)  # a default argument
    m = re.match(r"(.*?)(\w+)\s*$", text, re.S)
    ctype, name = (m.group(1), m.group(2)) if m and m.group(1).strip() else (text, "")
    if "*" in ctype:
        return name, (POINTER, 8)
    words = [w for w in re.findall(r"[\w:]+", ctype) if w not in ("const", "volatile", "__restrict__",
                                                                    "__restrict", "std::", "struct")]
    words = [w.removeprefix("std::") for w in words]
    return name, _SCALARS.get(" ".join(words))


def kernels_in(code: str) -> dict:
    """{name: _Declared} of the `__global__` functions at namespace scope, by plain and qualified name."""
    text = _COMMENTS.sub(lambda m: " " * len(m.group(0)) if not m.group(0).startswith('"') else
                         m.group(0), code)
    out, scopes, pos = {}, [], 0
    token = re.compile(r'(namespace\s+(\w+(?:::\w+)*)?\s*\{)|(extern\s+"C"\s*\{)|(__global__)|([{}])')
    while True:
        m = token.search(text, pos)
        if m is None:
            return out
        pos = m.end()
        if m.group(1):
            scopes.append(("ns", m.group(2) or ""))
        elif m.group(3):
            scopes.append(("c", ""))
        elif m.group(5) == "{":
            scopes.append(("block", ""))
        elif m.group(5) == "}":
            if scopes:
                scopes.pop()
        elif all(kind != "block" for kind, _ in scopes):
            head = re.search(r"[^;{}]*$", text[:m.start()]).group(0)
            sig = re.match(r"(?:\s|__launch_bounds__\s*\([^)]*\)|static|inline|void)*(\w+)\s*\(", text[pos:])
            if sig is None:
                continue
            close, depth = pos + sig.end(), 1
            while depth and close < len(text):
                depth += {"(": 1, ")": -1}.get(text[close], 0)
                close += 1
            params = [_param(p) for p in _split_params(text[pos + sig.end():close - 1])]
            ns = "::".join(n for kind, n in scopes if kind == "ns" and n)
            decl = _Declared(f"{ns}::{sig.group(1)}" if ns else sig.group(1),
                             'extern "C"' in head or any(kind == "c" for kind, _ in scopes),
                             re.search(r"\btemplate\b", head) is not None, params)
            out.setdefault(decl.qualname, decl)
            out.setdefault(sig.group(1), decl)
            pos = close


# ---- Program ---------------------------------------------------------------------------------------

def _current_device():
    try:
        return Device()
    except TileLaunchError:  # no GPU, no emulation
        return None


def _nvrtc():
    try:
        from cuda.bindings import nvrtc
    except ImportError:
        raise TileLaunchError("compiling CUDA C++ for a GPU target needs NVRTC: pip install 'tilewise[cuda]' "
                              "(cuda-bindings, nvidia-cuda-nvrtc)") from None
    return nvrtc


class Program:
    """CUDA C++ source to compile (cuda.core's Program). `code_type` is "c++" (PTX input is not taken yet)."""

    def __init__(self, code, code_type="c++", options=None):
        if str(code_type).lower() != "c++":
            raise TileLaunchError(f"Program takes code_type 'c++' so far, got {code_type!r}")
        if not isinstance(code, str):
            raise TypeError(f"Program's code must be a str of CUDA C++, got {type(code).__name__}")
        self.code, self.code_type = code, "c++"
        self.options = options if options is not None else ProgramOptions()
        self.kernels = kernels_in(code)

    @property
    def backend(self):
        return "NVRTC"

    def close(self):
        pass

    def compile(self, target_type, name_expressions=(), logs=None):
        """An ObjectCode. "ptx" is always NVRTC's PTX (no GPU needed). "cubin" is NVRTC's cubin for
        `options.arch` (else the current GPU's); on the emulated device, it is the host library the
        emulator's compiler built, so compile errors come from here as they would from NVRTC."""
        if target_type not in ("cubin", "ptx"):
            raise TileLaunchError(f"Program.compile takes target_type 'cubin' or 'ptx' so far, got {target_type!r}")
        name_expressions = tuple(name_expressions)
        obj = ObjectCode(self, target_type, name_expressions)
        dev = _current_device() if target_type == "cubin" else None
        if dev is not None and dev.emulated:
            obj._emulated_build()
        else:
            obj._nvrtc_build(self._arch(target_type, dev), logs)
        return obj

    def _arch(self, target_type, dev):
        arch = self.options.arch
        if arch is None:
            if dev is None and target_type == "cubin":
                raise TileLaunchError("Program.compile('cubin') with no GPU needs ProgramOptions(arch='sm_XX') "
                                      "(or TILEWISE_EMULATE_GPU=1 for the emulated device)")
            arch = dev.arch if dev is not None else (_current_device() or _Sm80).arch
        num = re.fullmatch(r"(?:sm|compute)_(\d+[af]?)", arch)
        if num is None:
            raise TileLaunchError(f"unknown CUDA architecture '{arch}'; write it like 'sm_90'")
        return f"{'sm' if target_type == 'cubin' else 'compute'}_{num.group(1)}"

    def __repr__(self):
        return f"<tw.runtime.Program {self.options.name or 'default_program'}: {len(self.code)} chars of CUDA C++>"


class _Sm80:
    arch = "sm_80"


class ObjectCode:
    """Compiled code (cuda.core's ObjectCode): `.code` (cubin bytes, PTX text, or on the emulated device
    the host library's bytes), `.code_type`, `.name`, `.symbol_mapping` (name expression -> mangled name),
    `.get_kernel(name)`. One made by Program.compile keeps the source, so it launches on either device."""

    def __init__(self, program, code_type, name_expressions=(), code=None, symbol_mapping=None, name=""):
        self._program = program
        self.code_type = code_type
        self.name = name or (program.options.name if program else "") or "default_program"
        self._name_expressions = tuple(name_expressions)
        self._code = code
        self.symbol_mapping = dict(symbol_mapping or {})
        self._emulated = None  # (library, {kernel expression: stub number})

    @classmethod
    def from_cubin(cls, module, *, name="", symbol_mapping=None):
        data = Path(module).read_bytes() if isinstance(module, (str, Path)) else bytes(module)
        return cls(None, "cubin", code=data, symbol_mapping=symbol_mapping, name=name)

    @classmethod
    def from_ptx(cls, module, *, name="", symbol_mapping=None):
        data = Path(module).read_bytes() if isinstance(module, (str, Path)) and not str(module).lstrip().startswith(
            ("//", ".version")) else module
        return cls(None, "ptx", code=data, symbol_mapping=symbol_mapping, name=name)

    @property
    def code(self):
        if self._code is None and self._emulated is not None:
            return Path(self._emulated[2]).read_bytes()
        return self._code

    def _cxx_linkage(self):
        """Name expressions for the C++-linkage kernels of the source, so that NVRTC reports their mangled
        names and get_kernel takes the plain name on a GPU as it does on the emulated device."""
        return [d.qualname for n, d in self._program.kernels.items()
                if n == d.qualname and not d.template and not d.extern_c]

    def _stubs(self):
        exprs = [d.qualname for d in self._program.kernels.values() if not d.template]
        return list(dict.fromkeys(exprs + list(self._name_expressions)))

    def _emulated_build(self):
        """Build the host library (once) and return (library, {expression: stub number})."""
        if self._emulated is None:
            if self._program is None:
                raise TileLaunchError(f"ObjectCode '{self.name}' came from {self.code_type} bytes, which the "
                                      "emulated device cannot run: compile the Program's source instead")
            from ..backends.cuda import emulator
            from . import program_emulated
            prog, opts = self._program, self._program.options
            stubs = self._stubs()
            src = program_emulated.source(prog.code, self.name, opts._list("pre_include"), stubs)
            if opts._list("include_path") or opts._list("pre_include"):
                src += f"// headers {_include_digest(opts)}\n"
            name = self.name

            def failed(r):
                return CompileError(f"the emulator's host compiler could not compile program '{name}':\n"
                                    f"{_trim(r.stderr)}")
            path = emulator.build_user(src, opts.emulator_flags(), failed)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError as e:
                raise TileLaunchError(f"cuda-emulated: cannot load the library built for program '{name}' "
                                      f"({e}); its directory is under TMPDIR, which must allow executable "
                                      "mappings") from None
            self._emulated = (lib, {e: i for i, e in enumerate(stubs)}, str(path))
        return self._emulated

    def _nvrtc_build(self, arch, logs=None):
        prog, opts = self._program, self._program.options
        target = self.code_type
        flags = opts.nvrtc_flags(arch)
        exprs = list(dict.fromkeys(list(self._name_expressions) + self._cxx_linkage()))
        key = ("program-1", target, prog.code, *flags, "\0", *exprs, _include_digest(opts))
        hit = diskcache.get("cuda", key)
        if hit is not None:
            try:
                n = int.from_bytes(hit[:4], "little")
                self.symbol_mapping = json.loads(bytes(hit[4:4 + n]))
                self._code = bytes(hit[4 + n:]) if target == "cubin" else bytes(hit[4 + n:]).decode()
                return
            except ValueError:
                diskcache.reject("cuda", key, "not a symbol mapping and code")
        nvrtc = _nvrtc()
        ok = nvrtc.nvrtcResult.NVRTC_SUCCESS
        err, handle = nvrtc.nvrtcCreateProgram(prog.code.encode(), self.name.encode(), 0, [], [])
        if err != ok:
            raise TileLaunchError(f"nvrtcCreateProgram failed ({err.name})")
        try:
            for e in exprs:
                nvrtc.nvrtcAddNameExpression(handle, e.encode())
            (err,) = nvrtc.nvrtcCompileProgram(handle, len(flags), [f.encode() for f in flags])
            _, size = nvrtc.nvrtcGetProgramLogSize(handle)
            log = b" " * size
            nvrtc.nvrtcGetProgramLog(handle, log)
            log = log.decode(errors="replace").rstrip("\0").strip()
            if logs is not None and log:
                logs.write(log)
            if err != ok:
                raise CompileError(f"NVRTC could not compile program '{self.name}' for {arch} ({err.name}):\n"
                                   f"{log[-4000:]}")
            for e in exprs:
                err, lowered = nvrtc.nvrtcGetLoweredName(handle, e.encode())
                if err == ok:
                    self.symbol_mapping[e] = lowered.decode()
            get_size, get = (nvrtc.nvrtcGetCUBINSize, nvrtc.nvrtcGetCUBIN) if target == "cubin" else \
                (nvrtc.nvrtcGetPTXSize, nvrtc.nvrtcGetPTX)
            _, size = get_size(handle)
            buf = b" " * size
            get(handle, buf)
        finally:
            nvrtc.nvrtcDestroyProgram(handle)
        self._code = buf if target == "cubin" else buf.decode().rstrip("\0")
        meta = json.dumps(self.symbol_mapping).encode()
        code = self._code if target == "cubin" else self._code.encode()
        diskcache.put("cuda", key, len(meta).to_bytes(4, "little") + meta + code)

    def get_kernel(self, name):
        """The Kernel `name`: a kernel declared in the source (plain or namespace-qualified name), one of
        compile()'s name_expressions (a template instance), or a mangled name of `symbol_mapping`."""
        name = name.decode() if isinstance(name, bytes) else str(name)
        if self._program is None:  # from_cubin / from_ptx: the module says, when it is loaded
            return Kernel(self, name, None, None)
        decl = self._program.kernels.get(name)
        if name in self._name_expressions:
            return Kernel(self, name, name, None if "<" in name else decl)
        if name in self.symbol_mapping.values():
            expr = next(e for e, m in self.symbol_mapping.items() if m == name)
            return Kernel(self, name, expr, None)
        if decl is not None and not decl.template:
            return Kernel(self, name, decl.qualname, decl)
        known = [n for n, d in self._program.kernels.items() if not d.template and n == d.qualname]
        hint = (" (a template kernel is launched through one of compile()'s name_expressions, e.g. "
                f"'{name}<float>')") if decl is not None else ""
        raise TileLaunchError(f"program '{self.name}' has no kernel '{name}'{hint}; its kernels: "
                              f"{', '.join(known + list(self._name_expressions)) or 'none'}")

    def __repr__(self):
        return f"<tw.runtime.ObjectCode {self.name} ({self.code_type})>"


def _trim(stderr, limit=4000):
    text = stderr.strip()
    return text if len(text) <= limit else "...\n" + text[-limit:]


class Kernel:
    """One kernel of an ObjectCode (cuda.core's Kernel), launched with `launch(stream, config, kernel, *args)`."""

    def __init__(self, object_code, name, expression, declared):
        self._object_code, self.name, self._expression, self._declared = object_code, name, expression, declared
        self._loaded = {}  # device -> the driver's loaded kernel

    @property
    def num_arguments(self):
        params = self._params(None)
        return None if params is None else len(params)

    def _emulated(self):
        lib, stubs, _ = self._object_code._emulated_build()
        i = stubs.get(self._expression)
        if i is None:
            raise TileLaunchError(f"kernel '{self.name}' is not in the emulated build of program "
                                  f"'{self._object_code.name}'")
        return lib, i

    def _params(self, device):
        """[(name, (kind, size) or None)] or None where the parameters are not known."""
        if device is not None and device.emulated:
            lib, i = self._emulated()
            describe = getattr(lib, f"tw_rt_params_{i}")
            out = (ctypes.c_int * 512)()
            n = describe(out, 512)
            names = [p[0] for p in self._declared.params] if self._declared and \
                len(self._declared.params) == n else [""] * n
            return [(names[k], (out[2 * k], out[2 * k + 1])) for k in range(n)]
        if self._declared is not None:
            return self._declared.params
        return None

    def __repr__(self):
        return f"<tw.runtime.Kernel {self.name} of {self._object_code.name}>"


# ---- LaunchConfig and launch ----------------------------------------------------------------------

def _dims(value, what):
    dims = (value,) if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if dims is None or not 1 <= len(dims) <= 3 or not all(isinstance(d, (int, np.integer)) and not
                                                              isinstance(d, bool) and d >= 1 for d in dims):
        raise TileLaunchError(f"LaunchConfig's {what} must be 1 to 3 positive ints, got {value!r}")
    return tuple(int(d) for d in dims) + (1,) * (3 - len(dims))


class LaunchConfig:
    """cuda.core's LaunchConfig: `grid` (blocks), `block` (threads per block), `shmem_size` (bytes of
    dynamic shared memory per block). Clusters and cooperative launches are not taken yet."""

    def __init__(self, grid=None, cluster=None, block=None, shmem_size=None, is_cooperative=False):
        if grid is None or block is None:
            raise TileLaunchError("LaunchConfig needs grid and block")
        if cluster is not None or is_cooperative:
            raise TileLaunchError("LaunchConfig: clusters and cooperative launches are not supported yet")
        self.grid, self.block = _dims(grid, "grid"), _dims(block, "block")
        self.shmem_size = int(shmem_size or 0)
        if math.prod(self.block) > 1024:
            raise TileLaunchError(f"a block has at most 1024 threads, LaunchConfig asks {math.prod(self.block)} "
                                  f"({self.block})")
        if self.shmem_size < 0:
            raise TileLaunchError(f"shmem_size must be >= 0, got {shmem_size}")

    def __repr__(self):
        return f"LaunchConfig(grid={self.grid}, block={self.block}, shmem_size={self.shmem_size})"


def _device_of(stream):
    if isinstance(stream, Stream):
        return stream.device
    return Device()


def _pointer(x, what, device):
    """(address, what keeps it alive) of a device array, Buffer or pointer int, on `device`."""
    if isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_)):
        return int(x), None  # cuda.core passes a Python int as an address
    if isinstance(x, DeviceArray):
        ptr, owner = x.ptr, x
    elif hasattr(x, "__cuda_array_interface__"):
        ptr, owner = int(x.__cuda_array_interface__["data"][0]), x
    elif type(x).__name__ == "Buffer" and hasattr(x, "handle"):  # a cuda.core Buffer
        ptr, owner = int(x.handle), x
    elif hasattr(x, "__dlpack__") and not isinstance(x, np.ndarray):
        from .device_args import device_view
        try:
            view = device_view(x, what)
        except TileLaunchError as e:
            raise KernelArgumentError(str(e)) from None
        ptr, owner = view.ptr, view
    elif isinstance(x, np.ndarray):
        raise KernelArgumentError(f"{what} is a host NumPy array; kernels take device memory: copy it with "
                                  "tw.to_device(...)")
    else:
        return None
    if ptr and device.emulated and not device.driver.owns(ptr):
        raise KernelArgumentError(f"{what} points at {ptr:#x}, which is not memory of {device.name}")
    return ptr, owner


def _scalar(x, what, kind, size):
    """The parameter's bytes for scalar `x` as a declared (kind, size) parameter, or a KernelArgumentError."""
    ints = {1: np.int8, 2: np.int16, 4: np.int32, 8: np.int64}
    uints = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}
    floats = {2: np.float16, 4: np.float32, 8: np.float64}
    target = {SIGNED: ints, UNSIGNED: uints, FLOAT: floats, BOOL: {1: np.bool_}}.get(kind, {}).get(size)
    ctype = {SIGNED: "signed integer", UNSIGNED: "unsigned integer", FLOAT: "floating-point", BOOL: "bool"}
    declared = f"a {size}-byte {ctype.get(kind, 'value')}"
    if target is None:
        raise KernelArgumentError(f"{what} is declared as {declared}, which launch() cannot pass from Python yet")
    t = np.dtype(target)
    if isinstance(x, np.generic):
        ok = x.dtype.itemsize == size and (
            (kind in (SIGNED, UNSIGNED) and x.dtype.kind in "iu") or (kind == FLOAT and x.dtype.kind == "f") or
            (kind == BOOL and x.dtype.kind == "b"))
        if not ok:
            raise KernelArgumentError(f"{what} is NumPy {x.dtype} but the kernel declares {declared}; pass "
                                      f"np.{t.name}(...)")
        if x.dtype.kind in "iu" and not np.can_cast(x.dtype, t) and not (
                np.iinfo(t).min <= int(x) <= np.iinfo(t).max):
            raise KernelArgumentError(f"{what} = {x} does not fit {t.name}")
        return np.array([x]).astype(t, casting="unsafe")
    if isinstance(x, bool):
        if kind in (BOOL, SIGNED, UNSIGNED):
            return np.array([int(x)], t)
    elif isinstance(x, int):
        if kind in (SIGNED, UNSIGNED):
            info = np.iinfo(t)
            if not info.min <= x <= info.max:
                raise KernelArgumentError(f"{what} = {x} does not fit the kernel's {t.name} parameter")
            return np.array([x], t)
        if kind == FLOAT:
            v = np.array([x], t)
            if int(v[0]) != x:
                raise KernelArgumentError(f"{what} = {x} is not exactly a {t.name}; pass np.{t.name}(...)")
            return v
    elif isinstance(x, float):
        if kind == FLOAT:
            return np.array([x], t)
    raise KernelArgumentError(f"{what} is {type(x).__name__} {x!r:.40} but the kernel declares {declared}")


def _untyped(x, what):
    """cuda.core's rule where the parameters are unknown: int -> 64-bit, float -> double, NumPy by dtype."""
    if isinstance(x, np.generic) and x.dtype.kind in "biuf":
        return np.array([x])
    if isinstance(x, bool):
        return np.array([x], np.bool_)
    if isinstance(x, int):
        return np.array([x], np.int64)
    if isinstance(x, float):
        return np.array([x], np.float64)
    raise KernelArgumentError(f"{what} of type {type(x).__name__} cannot be passed to a kernel: pass device "
                              "arrays, Buffers, NumPy scalars, or Python ints and floats")


def pack_arguments(kernel, device, args):
    """(one NumPy buffer per kernel parameter, objects to keep alive), every argument checked first."""
    params = kernel._params(device)
    label = f"kernel '{kernel.name}'"
    if params is not None and len(params) != len(args):
        names = ", ".join(n or "?" for n, _ in params)
        raise KernelArgumentError(f"{label} takes {len(params)} arguments ({names}), got {len(args)}")
    bufs, keep = [], []
    for i, x in enumerate(args):
        pname, spec = params[i] if params is not None else ("", None)
        what = f"argument {i}{f' ({pname!r})' if pname else ''} of {label}"
        if params is not None and spec is None:  # a type this module cannot read: only exact NumPy scalars
            if isinstance(x, np.generic):
                bufs.append(np.array([x]))
                continue
            raise KernelArgumentError(f"{what} has a parameter type that launch() cannot check; pass a NumPy "
                                      "scalar of that type")
        if spec is not None and spec[0] == POINTER:
            got = _pointer(x, what, device)
            if got is None:
                raise KernelArgumentError(f"{what} is a pointer parameter but got {type(x).__name__}; pass a "
                                          "device array, a Buffer or an int address")
            bufs.append(np.array([got[0]], np.uint64))
            keep.append(got[1])
        elif spec is not None:
            if _pointer_like(x):
                raise KernelArgumentError(f"{what} is a scalar parameter but got an array ({type(x).__name__})")
            bufs.append(_scalar(x, what, *spec))
        else:
            got = _pointer(x, what, device) if not isinstance(x, (int, np.generic)) else None
            if got is not None:
                bufs.append(np.array([got[0]], np.uint64))
                keep.append(got[1])
            else:
                bufs.append(_untyped(x, what))
    return bufs, keep


def _pointer_like(x):
    return isinstance(x, (DeviceArray, np.ndarray)) or hasattr(x, "__cuda_array_interface__") or \
        hasattr(x, "__dlpack__")


def launch(stream, config, kernel, *args):
    """Queue `kernel` on `stream` (a tw.Stream, None for the default device's default stream, or anything
    `tw.launch` takes as a stream) with `config` and `args`; every argument is checked first."""
    if not isinstance(config, LaunchConfig):
        raise TypeError(f"launch's second argument must be a LaunchConfig, got {type(config).__name__}")
    if not isinstance(kernel, Kernel):
        raise TypeError(f"launch's third argument must be a Kernel (ObjectCode.get_kernel), got "
                        f"{type(kernel).__name__}")
    check_stream(stream)
    device = _device_of(stream)
    drv_stream = resolve_stream(stream, device)
    bufs, keep = pack_arguments(kernel, device, args)
    if device.emulated:
        from .program_emulated import MAX_DYNAMIC_SHARED
        if config.shmem_size > MAX_DYNAMIC_SHARED:
            raise TileLaunchError(f"shmem_size {config.shmem_size} is more dynamic shared memory than any GPU "
                                  f"gives a block ({MAX_DYNAMIC_SHARED} bytes)")
        lib, i = kernel._emulated()
        device.driver.launch_user(getattr(lib, f"tw_rt_launch_{i}"), kernel.name, config.grid + config.block,
                                  bufs, drv_stream, keep)
        return
    loaded = kernel._loaded.get(device)
    if loaded is None:
        obj = kernel._object_code
        if obj._code is None:  # built for the emulated device only
            obj._nvrtc_build(f"sm_{device.arch[3:]}")
        symbol = obj.symbol_mapping.get(kernel._expression or kernel.name, kernel.name)
        loaded = kernel._loaded[device] = device.driver.load_user(obj.code_type, obj._code, symbol)
    device.driver.launch_user(loaded, config.grid, config.block, config.shmem_size, bufs, drv_stream)
