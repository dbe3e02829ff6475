"""Every script in examples/ runs, checks itself against NumPy, and reports success, on every host backend."""
import os
import pathlib
import runpy
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


def test_examples_exist():
    names = {p.stem for p in EXAMPLES}
    assert {"vector_add", "softmax", "layer_norm", "matmul", "transpose", "histogram", "embedding", "cumsum",
            "flash_attention"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example(path, backend, capsys):
    module = runpy.run_path(str(path), run_name=f"example_{path.stem}")
    assert module["main"]() == 0
    out = capsys.readouterr().out
    assert out.strip().endswith("ok"), out


def test_example_as_script(backend):
    """The `if __name__ == "__main__"` entry point: exit status 0 and the one-line result."""
    path = next(p for p in EXAMPLES if p.stem == "vector_add")
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "TILEWISE_BACKEND": backend})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("ok")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_does_not_read_undetermined_padding(path, backend, monkeypatch, capsys):
    """With TILEWISE_POISON=1 padding that an example failed to specify reads NaN: results must not change."""
    monkeypatch.setenv("TILEWISE_POISON", "1")
    module = runpy.run_path(str(path), run_name=f"example_{path.stem}")
    assert module["main"](seed=1) == 0, capsys.readouterr().out
