"""The package layout: imports point one way (no cycles, function-level imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import kronsolve

SRC = Path(kronsolve.__file__).parent


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every kronsolve module that ``path`` imports, at any level of the file."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("kronsolve"):
                continue
            subs = set()
            for alias in node.names:  # "from . import _smalleig" names a module
                sub = f"{mod}.{alias.name}"
                if (SRC.parent / (sub.replace(".", "/") + ".py")).exists() or \
                        (SRC.parent / sub.replace(".", "/")).is_dir():
                    subs.add(sub)
            found |= subs or {mod}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kronsolve")}
    found.discard(name)
    return found


def test_import_graph_has_no_cycles():
    graph = {_module_name(p): _imports(p) for p in SRC.rglob("*.py")}
    # a package's __init__ may import its own submodules (re-exports); a submodule
    # importing its package's __init__ back is what would close a cycle
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(m: str, path: list[str]) -> bool:
        state[m] = 1
        for n in sorted(graph.get(m, ())):
            if n not in graph:
                continue
            if state.get(n) == 1:
                cycle.extend(path[path.index(n):] + [n] if n in path else [m, n])
                return True
            if state.get(n) is None and visit(n, path + [n]):
                return True
        state[m] = 2
        return False

    for m in sorted(graph):
        if m != "kronsolve" and state.get(m) is None and visit(m, [m]):
            break
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_twin_classes():
    """One class per concept whatever the array library."""
    import numpy as np
    import pytest

    torch = pytest.importorskip("torch")
    A = torch.asarray(np.eye(3))
    assert type(kronsolve.kron(A, A)) is kronsolve.KronProduct
    assert type(kronsolve.kronsum(A, A)) is kronsolve.KronSum
    assert type(kronsolve.KronSumSolver([A, A])) is kronsolve.KronSumSolver
    assert not any(name.startswith("Generic") for name in dir(kronsolve))
