"""The project's modules import in one direction: no cycle, deferred imports included.

Every `import` and `from … import` of a project module is read from the syntax tree,
wherever it stands (top level, inside a function, under `TYPE_CHECKING`), and the layers
point one way: domain ← projections ← actors ← api ← serve_app.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "projections", "actors", "api")
LAYER = {"domain": 0, "projections": 1, "actors": 2, "api": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if ".venv" not in p.parts
    }


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules `path` imports, resolved to the longest known module name."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import sub` depends on pkg.sub; `from mod import name` on mod
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph = {}
    for name, path in modules.items():
        # a package's __init__ is imported by its submodules' import machinery, not by code
        graph[name] = {m for m in _imports(path, known) if m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for peer in sorted(graph.get(node, ())):
            if state.get(peer) == 1:
                return [*stack[stack.index(peer) :], peer]
            if peer not in state:
                found = visit(peer)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_project_modules_deferred_imports_included() -> None:
    graph = _graph()
    assert "actors.tenant_actor" in graph and "api.runtime" in graph  # the scan found them
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_imports_never_go_up_the_layers() -> None:
    upward = [
        f"{module} imports {peer}"
        for module, peers in _graph().items()
        for peer in peers
        if LAYER[peer.split(".")[0]] > LAYER[module.split(".")[0]]
    ]
    assert upward == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
