"""`tilewise lint FILE.py [KERNEL] [--args ...] [--target ...]`: the static analyzer's findings for the
kernels of a file.

With `--args`, the kernel (named, or the file's only one) is compiled for those stand-in arguments, as
`tilewise inspect` does. Without, the file runs as a script (`__main__`, like `python FILE.py`) and every
kernel specialisation it launches is linted with the arguments it was launched with: the lints then see
the real shapes, as the script uses them."""
from __future__ import annotations

import contextlib
import runpy
import sys
from pathlib import Path

from ..runtime.launch import CompiledKernel, _listeners, array_layouts
from ..runtime.launch import compile as tw_compile
from .inspection import SpecError, load_kernel, parse_args


def compiled_launches(fn_run):
    """Run `fn_run()` and return a CompiledKernel per kernel specialisation it launched on the host, in
    launch order (device launches are compiled by the runtime for the device and are left out)."""
    seen = {}

    def listener(ev, done):
        if done and ev.fn is not None and id(ev.fn) not in seen:
            seen[id(ev.fn)] = (ev.kernel, ev.fn, ev.backend, array_layouts(ev.values))

    _listeners.append(listener)
    try:
        fn_run()
    finally:
        _listeners.remove(listener)
    out = []
    for kernel, fn, backend, layouts in seen.values():
        exe = next((e for f, e in kernel.runtime_cache.values() if f is fn), None)
        if exe is not None:
            out.append(CompiledKernel(fn, exe, backend, layouts))
    return out


def run_script(path, argv=()):
    """Run a Python file as `__main__` with its directory on sys.path; its output goes to stderr so that
    the findings alone are on stdout. Returns its exit code."""
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [str(path), *argv]
    sys.path.insert(0, str(Path(path).resolve().parent))
    try:
        with contextlib.redirect_stdout(sys.stderr):
            runpy.run_path(str(path), run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
    return 0


def _kernels_of(path):
    from ..frontend.kernel import Kernel
    module = runpy.run_path(str(path), run_name="_tilewise_lint")
    return sorted(k for k, v in module.items() if isinstance(v, Kernel))


def lint(path, name=None, args_text=None, target=None, stream=None) -> int:
    """Print the findings; exit code 1 when there are any, 0 when there are none."""
    from .. import backends
    stream = stream or sys.stdout
    if not Path(path).is_file():
        raise SpecError(f"no such file: {path}")
    if args_text is not None:
        if name is None:
            found = _kernels_of(path)
            if len(found) != 1:
                raise SpecError(f"{path} defines {len(found)} kernels ({', '.join(found) or 'none'}); name the one "
                                "that --args is for")
            name = found[0]
        compiled = [tw_compile(load_kernel(path, name), parse_args(args_text),
                                    target=target or backends.host_backend_name())]
    else:
        if target:
            raise SpecError("--target needs --args (a script's launches run on its own backend)")
        code = [0]
        compiled = compiled_launches(lambda: code.__setitem__(0, run_script(path)))
        if code[0]:
            print(f"tilewise lint: {path} exited with {code[0]}; linting the kernels it launched", file=sys.stderr)
        if name is not None:
            compiled = [c for c in compiled if c.function.name == name]
    findings = list(dict.fromkeys(f for c in compiled for f in c.lints))
    for f in findings:
        print(f, file=stream)
    kernels = f"{len(compiled)} kernel specialisation(s)"
    print(f"{len(findings)} finding(s) in {kernels}" if findings else f"no findings in {kernels}", file=stream)
    return 1 if findings else 0
