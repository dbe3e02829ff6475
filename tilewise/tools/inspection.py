"""`tilewise inspect FILE.py KERNEL --args "f32[256,1024], f32[256,1024], 4, 1024"`: compile a kernel
from a file for stand-in arguments and print what each stage made (Tile IR, backend code, assembly or
PTX with `--show asm`, resources, binary, and the static analyzer's findings with `--show lints`).
Also `tilewise cache info|clear`. cli.py wires these into the command line."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np

STAGES = ("ir", "code", "asm", "resources", "binary", "lints")
_SHORT = {"f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2", "bf16": "bfloat16", "tf32": "tfloat32",
          "f16": "float16", "f32": "float32", "f64": "float64", "b": "bool_", "bool": "bool_",
          **{f"i{n}": f"int{n}" for n in (8, 16, 32, 64)}, **{f"u{n}": f"uint{n}" for n in (8, 16, 32, 64)}}
_ARRAY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\[([^\]]*)\]$")
_HELP = ("write each argument as dtype[shape] for an array (f32[256,1024], bf16[64], i32[]), "
         "(spec, spec, ...) for a list of arrays, or an int, float, True or False")


class SpecError(ValueError):
    """A malformed --args or --show; the command prints it on one line and exits with 2."""


def _split(text):
    """Top-level comma-separated items (commas inside [] and () belong to their item)."""
    items, depth, cur = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth < 0:
                raise SpecError(f"unbalanced '{ch}' in --args {text!r}")
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if depth:
        raise SpecError(f"unclosed bracket in --args {text!r}")
    items.append("".join(cur).strip())
    return items


def _dtype(name):
    from ..ir import dtypes
    try:
        return dtypes.from_name(_SHORT.get(name, name))
    except KeyError:
        raise SpecError(f"unknown dtype '{name}'; use one of f16 bf16 f32 f64 tf32 i8..i64 u8..u64 bool, "
                        "or a full name like float32") from None


def parse_arg(item: str, index: int = 0):
    """One stand-in argument from its spec: a zero-filled array, a list of them, or a Python scalar."""
    where = f"argument {index + 1} ({item!r})"
    if not item:
        raise SpecError(f"argument {index + 1} is empty; {_HELP}")
    if item.startswith("(") and item.endswith(")"):
        return [parse_arg(x, index) for x in _split(item[1:-1]) if x]
    m = _ARRAY.match(item)
    if m:
        dt = _dtype(m.group(1))
        dims = [d.strip() for d in m.group(2).split(",")] if m.group(2).strip() else []
        try:
            shape = tuple(int(d) for d in dims)
        except ValueError:
            raise SpecError(f"{where}: a shape is a list of non-negative integers, like f32[256,1024]") from None
        if any(d < 0 for d in shape):
            raise SpecError(f"{where}: a shape is a list of non-negative integers, like f32[256,1024]")
        return np.zeros(shape, dt.np)  # calloc: a large stand-in costs no memory until written
    if item in ("True", "true"):
        return True
    if item in ("False", "false"):
        return False
    for base in (10, 0):  # 0: 0x.., 0b..; but "010" stays ten
        try:
            return int(item, base)
        except ValueError:
            pass
    try:
        return float(item)
    except ValueError:
        raise SpecError(f"{where} is not understood; {_HELP}") from None


def parse_args(text: str) -> tuple:
    return tuple(parse_arg(x, i) for i, x in enumerate(_split(text))) if text.strip() else ()


def parse_show(text: str) -> list[str]:
    stages = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise SpecError(f"--show takes a comma-separated subset of {','.join(STAGES)}; got {text!r}")
    return stages


def load_kernel(path: str, name: str):
    """The @tw.kernel called `name` in the Python file at `path` (imported as a module, its directory on
    sys.path so its own imports work; `if __name__ == "__main__"` blocks do not run)."""
    from ..frontend.kernel import Kernel
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_tilewise_inspect_{p.stem}", p)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(p.resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    kernel = getattr(module, name, None)
    if not isinstance(kernel, Kernel):
        found = sorted(k for k, v in vars(module).items() if isinstance(v, Kernel))
        raise SpecError(f"{path} has no @tw.kernel named '{name}'"
                        + (f"; its kernels: {', '.join(found)}" if found else "; it defines no kernels"))
    return kernel


def _hex_head(data: bytes, n=64):
    head = data[:n]
    return "\n".join(f"  {i:04x}  {head[i:i + 16].hex(' ')}" for i in range(0, len(head), 16))


def inspect(path, name, args_text, target=None, show="ir,code,resources,binary", out=None, stream=None):
    """Print the chosen stages for one kernel specialisation; returns the exit code."""
    from .. import backends
    from ..runtime.launch import compile as tw_compile
    stream = stream or sys.stdout
    stages = parse_show(show)
    args = parse_args(args_text)
    kernel = load_kernel(path, name)
    target = target or backends.host_backend_name()
    c = tw_compile(kernel, args, target=target)
    print(f"# {name} from {path} for {target}", file=stream)
    for stage in stages:
        value = getattr(c, stage)
        print(f"\n== {stage} ==", file=stream)
        if stage == "lints":  # the static analyzer's findings (tilewise.ir.lints)
            for finding in value:
                print(finding, file=stream)
            if not value:
                print("(no findings)", file=stream)
        elif stage == "resources":
            for k, v in (value or {}).items():
                print(f"{k}: {v}", file=stream)
            if not value:
                print(f"(the {target} backend reports no resources)", file=stream)
        elif value is None:
            print(f"(the {target} backend has no {stage})", file=stream)
        elif stage == "binary":
            if out:
                Path(out).write_bytes(value)
                print(f"{len(value)} bytes written to {out}", file=stream)
            else:
                print(f"{len(value)} bytes; first {min(64, len(value))}:", file=stream)
                print(_hex_head(value), file=stream)
        else:
            print(value.rstrip("\n"), file=stream)
    return 0


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def cache_info(stream=None) -> int:
    from ..support import diskcache as cache
    stream = stream or sys.stdout
    i = cache.info()
    state = "enabled" if i["enabled"] else "disabled (TILEWISE_CACHE=0)"
    print(f"cache      {i['root']} ({state})", file=stream)
    total_n = total_b = 0
    for ns, s in i["namespaces"].items():
        print(f"{ns:<14} {s['entries']:>6} entries  {_size(s['bytes']):>10}", file=stream)
        total_n, total_b = total_n + s["entries"], total_b + s["bytes"]
    print(f"{'total':<14} {total_n:>6} entries  {_size(total_b):>10}", file=stream)
    return 0


def cache_clear(stream=None) -> int:
    from ..support import diskcache as cache
    n = cache.clear()
    print(f"removed {n} entries from {cache.root()}", file=stream or sys.stdout)
    return 0
