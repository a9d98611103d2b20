"""The layout is the architecture: dependencies point one way, tools stay outside the product.

Checked on the source with ``ast`` (every import, module-level or inside a function)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNTIME = ("qa", "embeddings", "ui")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(*packages: str) -> dict[str, Path]:
    return {_module_name(p): p for pkg in packages for p in sorted((REPO / pkg).rglob("*.py"))}


def _imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` if it is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def _graph(*packages: str) -> dict[str, set[str]]:
    mods = _modules(*packages)
    known = set(mods) | set(_modules("tools"))
    return {m: _imports(p, known) - {m} for m, p in mods.items()}


def test_embeddings_never_imports_qa_or_ui():
    for module, deps in _graph("embeddings").items():
        assert not {d for d in deps if d.split(".")[0] in ("qa", "ui")}, module


def test_the_runtime_never_imports_the_tools():
    for module, deps in _graph(*RUNTIME).items():
        assert not {d for d in deps if d.split(".")[0] == "tools"}, module


def test_qa_never_imports_the_page():
    for module, deps in _graph("qa", "embeddings").items():
        assert not {d for d in deps if d.split(".")[0] == "ui"}, module


def test_no_import_cycle_between_files():
    graph = _graph(*RUNTIME)
    # a package's __init__ re-exporting its own modules is not a cycle between files
    edges = {m: {d for d in deps if not (m and d.startswith(m + "."))} for m, deps in graph.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(edges.get(m, ())):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d in edges and not state.get(d):
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(edges):
        if not state.get(m):
            visit(m)


def test_answering_imports_no_torch_transformers_onnx_or_sentence_transformers():
    # the first answer in a fresh QA_HOME writes the reader's unpacked weights once (with onnx);
    # every answer after that imports none of these
    first = subprocess.run([sys.executable, "-c", "from qa import answer; answer('新材料产业产值是多少')"],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    code = ("import sys\nfrom qa import answer\nassert answer('新材料产业产值是多少').text\n"
            "print(sorted(m for m in ('torch', 'transformers', 'onnx', 'sentence_transformers', 'tools') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_every_stage_has_its_folder():
    for folder in ("qa/ingest", "qa/text", "qa/index", "qa/retrieve", "qa/read", "qa/evaluation", "embeddings",
                   "ui", "tools"):
        assert (REPO / folder).is_dir(), folder
