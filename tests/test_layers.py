"""The package's layers (sparsekern/): imports flow down, never back up, and never in a
cycle. Read from the source with ast, so lazy imports inside functions count too.

    sparsekern (public API)  ->  ops  ->  formats, _backends  ->  _errors
    bench                    ->  sparsekern, formats
    _backends  ->  _numba (the numba kernels), _backends._ffi (cffi)
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sparsekern

PKG = Path(sparsekern.__file__).resolve().parent
SOURCE_TREE = (PKG.parent / "pyproject.toml").is_file()

# module (prefix) -> the sparsekern modules (prefixes) it must not import
FORBIDDEN = {
    "sparsekern.formats": ("sparsekern._backends", "sparsekern.ops", "sparsekern.bench",
                           "sparsekern._numba"),
    "sparsekern._backends": ("sparsekern.formats", "sparsekern.ops", "sparsekern.bench"),
    "sparsekern._numba": ("sparsekern.formats", "sparsekern.ops", "sparsekern.bench",
                          "sparsekern._backends"),
    "sparsekern.ops": ("sparsekern.bench",),
    "sparsekern._errors": ("sparsekern.",),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The sparsekern modules that module ``name`` imports (anywhere in its body)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:       # `from pkg import submodule` imports the submodule
                sub = f"{target}.{a.name}"
                out.add(sub if sub in modules else target)
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_layers_import_downwards_only():
    bad = []
    for name, deps in _graph().items():
        for layer, banned in FORBIDDEN.items():
            if name == layer or name.startswith(layer + "."):
                bad += [f"{name} imports {d}" for d in deps
                        if any(d == b or d.startswith(b if b.endswith(".") else b + ".")
                               for b in banned) and not d.startswith(layer)]
    assert bad == []


def test_the_scan_sees_cycles():
    """The checker itself: a made-up cycle and a lazy import are found."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b"]]
    graph = _graph()
    assert "sparsekern.ops.linear" in graph["sparsekern.ops"]
    assert "sparsekern.formats._base" in graph["sparsekern.ops"]


@pytest.mark.skipif(not SOURCE_TREE, reason="needs the source tree")
def test_no_monkeypatching_of_the_formats():
    """Methods of the formats are defined in their classes, not assigned from outside."""
    for name, path in _modules().items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                            and t.value.id.endswith("Matrix") and t.attr.startswith("__")):
                        pytest.fail(f"{name}: assigns {t.value.id}.{t.attr}")
