"""The `tilewise` command: `tilewise demo` checks an install end to end, `tilewise info` says what
this machine offers (versions, backends, devices) for bug reports, `tilewise cache info|clear` shows or
empties the compile cache, `tilewise inspect` shows what a kernel compiles to (inspection.py),
`tilewise lint` prints the static analyzer's findings (tools/linting.py), and `tilewise profile SCRIPT`
runs a script under the profiler (profiler/script.py)."""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys


def _version(module):
    try:
        return importlib.import_module(module).__version__
    except Exception as e:  # a broken optional install is information, not a crash
        return f"not available ({type(e).__name__})"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cuda_devices() -> list[str] | str:
    """Names of the CUDA devices cuda.core finds, or why there are none. Never raises."""
    try:
        try:
            from cuda.core import Device, system
        except ImportError:
            from cuda.core.experimental import Device, system
    except Exception:
        return "not available (cuda.core is not installed; pip install 'tilewise[cuda]')"
    try:
        # cuda.core >= 1.0 has get_num_devices(); older releases a num_devices property
        n = system.get_num_devices() if hasattr(system, "get_num_devices") else system.num_devices
        if not n:
            return "not available (cuda.core found no device)"
        out = []
        for i in range(n):
            d = Device(i)
            cc = d.compute_capability
            out.append(f"{i}: {d.name} (sm_{cc[0]}{cc[1]})")
        return out
    except Exception as e:
        return f"not available ({type(e).__name__}: {e})"


def info() -> int:
    from . import __version__, backends
    print(f"tilewise   {__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    for mod in ("numpy", "ml_dtypes", "llvmlite"):
        print(f"{mod:<10} {_version(mod)}")
    print(f"backends   {', '.join(backends.available())}")
    if "cuda-emulated" not in backends.available():
        why = "no host C++20 compiler found (g++ or $CXX)" if not backends.host_cxx() else \
            "TILEWISE_ENABLE_CUDA_EMULATED=0"
        print(f"           cuda-emulated not registered: {why}")
    env = os.environ.get("TILEWISE_BACKEND")
    print(f"host       {backends.host_backend_name()}"
          + (" (from TILEWISE_BACKEND)" if env else " (default; set TILEWISE_BACKEND to choose)"))
    print(f"cpu        {cpu_model()}, {usable_cores()} cores usable of {os.cpu_count()}")
    cuda = cuda_devices()
    if isinstance(cuda, str):
        print(f"cuda       {cuda}")
    else:
        print(f"cuda       {len(cuda)} device(s)")
        for line in cuda:
            print(f"           {line}")
    return 0


def demo() -> int:
    from .tools import demo as demo_module
    return demo_module.main()


def _dispatch(args) -> int:
    if args.command == "demo":
        return demo()
    if args.command == "info":
        return info()
    if args.command == "profile":
        from .profiler import script
        try:
            argv, opts = script.split_argv(args.args)
        except ValueError as e:
            print(f"tilewise profile: error: {e}", file=sys.stderr)
            return 2
        return script.run(args.script, argv, opts.get("trace") or args.trace, opts.get("roofline") or args.roofline)
    from .errors import TileError
    from .tools import inspection
    if args.command == "cache":
        return inspection.cache_info() if args.action == "info" else inspection.cache_clear()
    if args.command == "lint":
        from .tools import linting
        try:
            return linting.lint(args.file, args.kernel, args.args, args.target)
        except inspection.SpecError as e:
            print(f"tilewise lint: error: {e}", file=sys.stderr)
            return 2
        except TileError as e:
            print(f"tilewise lint: {type(e).__name__}: {e}", file=sys.stderr)
            return 2
    try:
        return inspection.inspect(args.file, args.kernel, args.args, args.target, args.show, args.out)
    except inspection.SpecError as e:
        print(f"tilewise inspect: error: {e}", file=sys.stderr)
        return 2
    except TileError as e:  # the kernel does not compile for these arguments: the user's message, no traceback
        print(f"tilewise inspect: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tilewise", description="Python-native tile programming.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.add_parser("demo", help="run five kernels on this machine and check them against NumPy")
    sub.add_parser("info", help="versions, backends and devices on this machine")
    cache = sub.add_parser("cache", help="the on-disk compile cache: 'info' (where, how big) or 'clear'")
    cache.add_argument("action", choices=("info", "clear"))
    insp = sub.add_parser("inspect", help="compile a kernel from a file and show its IR, code, resources, binary")
    insp.add_argument("file", help="the Python file that defines the kernel")
    insp.add_argument("kernel", help="the @tw.kernel's name in that file")
    insp.add_argument("--args", default="", help='stand-in arguments, e.g. "f32[256,1024], f32[256,1024], 4, 1024"')
    insp.add_argument("--target", help="cpu, reference, cuda-emulated or cuda:sm_XX (default: the host backend)")
    insp.add_argument("--show", default="ir,code,resources,binary",
                      help="stages to print, comma-separated, of ir,code,asm,resources,binary,lints (asm: the "
                           "host assembly on cpu, PTX on cuda; lints: the static analyzer's findings)")
    insp.add_argument("--out", help="write the binary to this file instead of printing its head")
    lint = sub.add_parser("lint", help="the static analyzer's findings for a file's kernels (exit code 1 if any)")
    lint.add_argument("file", help="the Python file: run as a script (its launches are linted), or see --args")
    lint.add_argument("kernel", nargs="?", help="only this @tw.kernel (with --args: the one to compile)")
    lint.add_argument("--args", help="compile the kernel for these stand-in arguments instead of running the file")
    lint.add_argument("--target", help="with --args: cpu, reference, cuda-emulated or cuda:sm_XX")
    prof = sub.add_parser("profile", help="run a Python script under the profiler and print its kernels' table")
    prof.add_argument("--trace", help="write a Chrome/Perfetto trace (JSON) to this path")
    prof.add_argument("--roofline", help="write a roofline plot (PNG) to this path")
    prof.add_argument("script", help="the Python script to run")
    prof.add_argument("args", nargs=argparse.REMAINDER, help="its arguments (and --trace/--roofline)")
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return _dispatch(args)
    except BrokenPipeError:  # `tilewise info | head`: the reader left; not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
