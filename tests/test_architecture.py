"""The package's import graph, function-local imports included, has no cycles.

The checker parses every module of numeral with ast and follows top-level and
function-local imports (absolute and relative), and checks every import against the
table of which package may import which, read from docs/architecture.md.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "numeral"
TABLE = ROOT.parent / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The numeral modules one file imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            subs = [f"{base}.{a.name}" for a in node.names]
            # ``from pkg import submodule`` imports the submodule, not pkg's own names
            targets = subs if all(t in modules for t in subs) else [base, *subs]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = list(ROOT.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_checker_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_checker_sees_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "numeral"
    (pkg / "sub").mkdir(parents=True)
    f = pkg / "sub" / "x.py"
    f.write_text("def f():\n    from . import y\n    import numeral.z\n")
    global ROOT
    old, ROOT = ROOT, pkg
    try:
        found = imports_of(f, {"numeral.sub.x", "numeral.sub.y", "numeral.z"})
    finally:
        ROOT = old
    assert found == {"numeral.sub.y", "numeral.z"}


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph()) is None


def permissions(text: str) -> dict[str, set[str] | None]:
    """The table of docs/architecture.md's "Who may import whom": package -> the packages
    it may import (None: anything)."""
    section = text.split("## Who may import whom", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`numeral"):
            continue
        allowed = set(re.findall(r"`(numeral[\w.]*)`", cells[1]))
        for package in re.findall(r"`(numeral[\w.]*)`", cells[0]):
            table[package] = None if cells[1].startswith("anything") else allowed
    return table


def owner(module: str, table: dict[str, set[str] | None]) -> str | None:
    """The row a module belongs to: the longest package name it is, or starts with."""
    rows = [p for p in table if module == p or module.startswith(p + ".")]
    return max(rows, key=len) if rows else None


def violations(graph: dict[str, set[str]], table: dict[str, set[str] | None]) -> list[str]:
    found = []
    for module, targets in sorted(graph.items()):
        row = owner(module, table)
        if row is None:
            found.append(f"{module} is in no row of the table")
            continue
        allowed = table[row]
        for target in sorted(targets):
            other = owner(target, table)
            if allowed is None or other == row or other in allowed:
                continue
            found.append(f"{module} imports {target} ({other}), which {row} may not")
    return found


def test_the_table_is_read_from_the_docs():
    table = permissions(TABLE.read_text(encoding="utf-8"))
    assert table["numeral.nn"] == set() and table["numeral.cli"] is None
    assert table["numeral.report"] == {"numeral.viz", "numeral.nn", "numeral.errors",
                                       "numeral.rundir"}
    assert owner("numeral.nn.layers.conv", table) == "numeral.nn"
    assert owner("numeral", table) == "numeral" and owner("numeral.readx", table) == "numeral"


def test_every_import_is_one_the_table_allows():
    table = permissions(TABLE.read_text(encoding="utf-8"))
    assert violations(import_graph(), table) == []


@pytest.mark.parametrize(("module", "target"), [
    ("numeral.nn.network", "numeral.data"),       # the core reaching up
    ("numeral.report", "numeral.train.loop"),     # the report would import training: a cycle
    ("numeral.data.augment", "numeral.viz"),
])
def test_a_forbidden_import_is_found(module, target):
    table = permissions(TABLE.read_text(encoding="utf-8"))
    graph = {module: {target}}
    assert violations(graph, table) and target in violations(graph, table)[0]
