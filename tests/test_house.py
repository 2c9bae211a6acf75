"""The shape of the house, checked from the code itself: no import circle anywhere, arrows that go
one way (core ← tasks ← flows ← deployments; inside the core, ground ← domains ← operations ←
batches), Prefect internals used in the one adapter only, thin flows, and tables that agree."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP = ("mediaflows", "tasks", "flows", "deployments", "bench", "tests")
PRODUCT = ("mediaflows", "tasks", "flows", "deployments")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {
    _module_name(path): path
    for top in TOP
    for path in sorted((ROOT / top).rglob("*.py"))
    if "__pycache__" not in path.parts
}


def _package_of(name: str) -> str:
    return name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]


def imports_of(name: str) -> Iterator[tuple[str, int]]:
    """Every project module ``name`` imports (at the top, in functions, for type checking), with
    the line: ``from a.b import c`` names the module ``a.b.c`` when there is one, else ``a.b``."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = _package_of(name).split(".")
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in MODULES:
                    yield full, node.lineno
                elif base in MODULES:
                    yield base, node.lineno


GRAPH: dict[str, set[str]] = {
    name: {target for target, _ in imports_of(name) if target != name} for name in MODULES
}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_walk_sees_the_imports_it_should() -> None:
    # The checks below are only as good as the import walk: a lazy import counts, a name
    # imported from a package counts as the package, a module imported from one as the module.
    assert "mediaflows.speech.records" in GRAPH["mediaflows.subtitles.cues"]
    assert "mediaflows.endpoints" in GRAPH["mediaflows.subtitles.chunks"]
    assert "mediaflows.subtitles.chunks" in GRAPH["mediaflows.subtitles.repair"]
    assert "flows.catalog" in GRAPH["deployments.warm_worker"]  # imported inside a method
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_among_the_project_modules() -> None:
    assert circles(GRAPH) == []


#: Who may import whom among the top-level folders (tests and bench may import anything).
LAYERS = {
    "mediaflows": {"mediaflows"},
    "tasks": {"mediaflows", "tasks"},
    "flows": {"mediaflows", "tasks", "flows"},
    "deployments": {"mediaflows", "tasks", "flows", "deployments"},
}

#: The core from the ground up: a module may import its own package and the ranks below it.
CORE_RANKS = {
    "mediaflows.errors": 0,
    "mediaflows.ids": 1,
    "mediaflows.stages": 0,
    "mediaflows.files": 0,
    "mediaflows.cancel": 1,
    "mediaflows.languages": 1,
    "mediaflows.settings": 1,
    "mediaflows.models": 2,
    "mediaflows.media": 3,
    "mediaflows.endpoints": 3,
    "mediaflows.store": 3,
    "mediaflows.speech": 4,
    "mediaflows.subtitles": 5,
    "mediaflows.operations": 6,
    "mediaflows.batches": 7,
    "mediaflows": 8,  # the package's __init__: the public names
}


def _rank(name: str) -> tuple[str, int]:
    for prefix in sorted(CORE_RANKS, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return prefix, CORE_RANKS[prefix]
    raise AssertionError(f"{name} has no place in CORE_RANKS: give it one")


def test_arrows_go_one_way() -> None:
    wrong = []
    for name, targets in GRAPH.items():
        top = name.split(".")[0]
        for target in targets:
            if top in LAYERS and target.split(".")[0] not in LAYERS[top]:
                wrong.append(f"{name} -> {target}")
            if top == "mediaflows" and target.startswith("mediaflows"):
                (own, rank), (theirs, their_rank) = _rank(name), _rank(target)
                if own != theirs and their_rank >= rank:
                    wrong.append(f"{name} -> {target} (rank {rank} -> {their_rank})")
    assert wrong == []


def test_the_core_never_imports_prefect() -> None:
    prefect = [
        f"{name}:{node.lineno}"
        for name, path in MODULES.items()
        if name.startswith("mediaflows")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            (getattr(node, "module", None) or alias.name).split(".")[0] == "prefect"
            for alias in node.names
        )
    ]
    assert prefect == []


#: Prefect internals and framework tricks: used in tasks/prefect_adapter only.
INTERNALS = re.compile(
    r"propose_state|infrastructure_pid=|force=True|_sync=True|__signature__|wrapped_future|"
    r"\.request\(\s*\"(?:GET|POST|PATCH|PUT|DELETE)|prefect\.flow_engine|prefect\.utilities\.engine|"
    r"SyncClientContext|refresh_global_settings_context|AioSqliteConfiguration|"
    r"concurrency_slots_with_lease|renew_concurrency_lease|globals\(\)\.update|"
    r"^def __getattr__",
    re.MULTILINE,
)


def _product_files() -> Iterator[tuple[str, Path]]:
    for name, path in MODULES.items():
        if name.split(".")[0] in PRODUCT:
            yield name, path


def test_prefect_internals_stay_in_the_adapter() -> None:
    outside = [
        f"{name}: {match.group(0)}"
        for name, path in _product_files()
        if not name.startswith("tasks.prefect_adapter")
        for match in INTERNALS.finditer(path.read_text())
    ]
    assert outside == []


def test_no_exception_is_swallowed_without_saying_which() -> None:
    bare = re.compile(r"suppress\((?:Base)?Exception\)|except (?:Base)?Exception:\s*\n\s*pass")
    found = [f"{name}: {m.group(0)!r}" for name, path in _product_files()
             for m in bare.finditer(path.read_text())]  # fmt: skip
    assert found == []


def _flow_functions() -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function of the flows package: the flows, and the bodies they are made from
    (``run_batch`` is every batch flow's)."""
    for name, path in MODULES.items():
        if not name.startswith("flows."):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield name, node


def test_flow_bodies_are_recipes_of_at_most_60_lines() -> None:
    bodies = list(_flow_functions())
    assert {name for name, _ in bodies} >= {
        "flows.convert", "flows.transcribe", "flows.generate_srt", "flows.fix_srt",
        "flows.translate_srt", "flows.sweep",
    }  # fmt: skip
    long = [
        f"{name}.{fn.name}: {(fn.end_lineno or fn.lineno) - fn.lineno + 1} lines"
        for name, fn in bodies
        if (fn.end_lineno or fn.lineno) - fn.lineno + 1 > 60
    ]
    assert long == []


def test_every_operation_has_its_flow_and_batch_flow() -> None:
    from flows.batch import BATCHES, OPERATION_FLOWS
    from flows.catalog import FLOWS
    from mediaflows.operations import OPERATIONS

    assert list(OPERATION_FLOWS) == list(OPERATIONS) == list(BATCHES)
    for name, spec in OPERATIONS.items():
        made = OPERATION_FLOWS[name]
        assert made.name == name and made.fn.__module__ == f"flows.{name}"
        assert BATCHES[name].name == spec.batch_name
        assert FLOWS[name] is made and FLOWS[spec.batch_name] is BATCHES[name]
    assert set(FLOWS) == {*OPERATIONS, *(s.batch_name for s in OPERATIONS.values()), "sweep",
                          "transcribe_window"}  # fmt: skip


SUBPACKAGES = sorted(
    name
    for name, path in MODULES.items()
    if path.name == "__init__.py" and name.split(".")[0] in PRODUCT and "." in name
)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_each_package_says_what_it_holds(package: str) -> None:
    doc = ast.get_docstring(ast.parse(MODULES[package].read_text())) or ""
    depth = package.count(".") + 1
    modules = sorted(
        name.rpartition(".")[2]
        for name in MODULES
        if name.startswith(package + ".") and name.count(".") == depth
    )
    assert doc, f"{package}/__init__.py has no docstring"
    missing = [m for m in modules if f".{m}`" not in doc]
    assert missing == [], f"{package}'s docstring does not name {missing}"
