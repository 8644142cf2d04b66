"""The package's layout keeps its promises: no import circle between kgrec's modules, no module
importing another's private names, every module saying its job in its first docstring line and
none much over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kgrec"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, list[str]]]:
    """``(module, imported names)`` of the module-level imports of ``name`` (imports inside
    functions, which run late, and ``if TYPE_CHECKING:`` blocks are not import-time edges)."""
    out = []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [a.name for a in node.names]
            out += [(f"{target}.{n}", []) for n in names if f"{target}.{n}" in MODULES]
            out.append((target, [n for n in names if f"{target}.{n}" not in MODULES]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return [(t, n) for t, n in out if t in MODULES and t != name]


def test_no_import_circle() -> None:
    graph = {name: {t for t, _ in _imports(name, path)} for name, path in MODULES.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(nxt):] + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_has_a_job_and_keeps_to_others_public_names(name: str) -> None:
    path = MODULES[name]
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    assert doc and doc.strip().splitlines()[0].strip(), f"{path}: no docstring naming the module's job"
    assert len(source.splitlines()) <= MAX_LINES, f"{path}: {len(source.splitlines())} lines (split it by job)"
    private = [f"{target}.{n}" for target, names in _imports(name, path) for n in names
               if n.startswith("_") and not n.startswith("__")]
    assert not private, f"{path} imports private names of other modules: {private}"


def test_the_check_sees_imports_and_circles() -> None:
    """The walker finds a known edge (the estimator imports the training package), so an empty
    graph cannot pass the circle test by accident."""
    edges = {t for t, _ in _imports("kgrec.recommender.estimator", MODULES["kgrec.recommender.estimator"])}
    assert "kgrec.train" in edges and "kgrec.recommender.base" in edges
