"""The house is one-way: every module of `tilewise` imports only from its own layer's group or from layers
below it, and no group of modules imports itself in a circle. The layers are written down here once and
shown in docs/architecture.md; an import inside a function counts like any other."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tilewise"

# From the bottom up. Groups on one floor stand beside each other: neither imports the other.
LAYERS = [
    ["tilewise.errors", "tilewise.support", "tilewise.ir", "tilewise.language"],
    ["tilewise.frontend", "tilewise.backends"],
    ["tilewise.runtime"],
    ["tilewise.profiler"],
    ["tilewise.math"],
    ["tilewise.numpy"],
    ["tilewise.dask"],
    ["tilewise"],  # the package's face: __init__.py, the public namespace
    ["tilewise.tools"],
    ["tilewise.cli"],
    ["tilewise.__main__"],
]


def _group(module):
    """(floor, group) of a module: the longest group name that is the module or a package above it."""
    best = None
    for floor, groups in enumerate(LAYERS):
        for g in groups:
            if (module == g or module.startswith(g + ".")) and (best is None or len(g) > len(best[1])):
                best = (floor, g)
    return best


def _modules():
    mods = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts.pop()
        mods[".".join(parts)] = (path, is_pkg)
    return mods


def _imports(name, path, is_pkg, mods):
    """Every tilewise module that `name` imports, anywhere in its body: `from .x import y` names module
    `x.y` where that is a module, else `x`."""
    package = name if is_pkg else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.add(sub if sub in mods else target)
    return {m for m in found if m in mods and m != name}


def _graph():
    mods = _modules()
    return {name: _imports(name, path, is_pkg, mods) for name, (path, is_pkg) in mods.items()}


GRAPH = _graph()


def test_every_module_has_a_layer():
    homeless = sorted(m for m in GRAPH if _group(m) is None)
    assert not homeless, f"modules outside every layer (add them to LAYERS and docs/architecture.md): {homeless}"


def test_imports_run_down_the_layers():
    wrong = []
    for m, targets in GRAPH.items():
        floor, group = _group(m)
        for t in targets:
            tfloor, tgroup = _group(t)
            if tfloor > floor or (tfloor == floor and tgroup != group):
                wrong.append(f"{m} (floor {floor}, {group}) imports {t} (floor {tfloor}, {tgroup})")
    assert not wrong, "imports that run up or sideways:\n" + "\n".join(sorted(wrong))


def _cycles(graph):
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, out = {}, {}, set(), [], []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def test_no_import_circles():
    circles = _cycles(GRAPH)
    assert not circles, "modules that import each other in a circle:\n" + "\n".join(map(str, circles))


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert _cycles(graph) == expected


def test_the_layer_rule_catches_an_upward_import():
    assert _group("tilewise.backends.cpu.launcher")[0] < _group("tilewise.runtime.args")[0]
    assert _group("tilewise.frontend.kernel") == (1, "tilewise.frontend")
    assert _group("tilewise.backends.cpu")[1] != _group("tilewise.frontend")[1]
