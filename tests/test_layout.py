"""The layout the README promises, held by tests: no import cycles, a small top level, short files and functions.

import-linter (run by ``scripts/test``) holds which stage may import which; these hold what it does not:
cycles anywhere between our modules (imports inside functions count: they only hide a cycle), and size.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1] / "reconciler"
MAX_TOP_LEVEL_MODULES = 10
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
REASON_MARK = "Long because:"  # a function over the limit says why in its docstring


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
    return groups


def test_cycle_finder_finds_a_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_import_cycles_between_our_modules() -> None:
    g = grimp.build_graph("reconciler", include_external_packages=False)
    graph = {m: set(g.find_modules_directly_imported_by(m)) for m in g.modules}
    assert strongly_connected(graph) == []


def test_top_level_is_small() -> None:
    modules = sorted(p.name for p in ROOT.glob("*.py"))
    assert len(modules) <= MAX_TOP_LEVEL_MODULES, modules


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_file_is_short(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= MAX_FILE_LINES


def long_functions(source: str) -> list[str]:
    """Functions over the limit whose docstring does not say why."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES and REASON_MARK not in (ast.get_docstring(node) or ""):
                out.append(f"{node.name} ({length} lines)")
    return out


def test_long_function_finder_needs_a_reason() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert long_functions(f"def f():\n{body}\n") == [f"f ({MAX_FUNCTION_LINES + 1} lines)"]
    assert long_functions(f'def f():\n    """{REASON_MARK} a table."""\n{body}\n') == []


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_are_short(path: Path) -> None:
    assert long_functions(path.read_text()) == []
