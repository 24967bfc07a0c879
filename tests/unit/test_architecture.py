"""The package layout holds: layers import only downwards, no cycles, small modules.

Layers, bottom to top (docs/architecture.md)::

    errors quantity files settings layout   the base
    groups
    gpu | services                          the inventory model and readers;
                                            platform services users' servers get
    catalog                                 the image catalog service and client
    environments                            definitions, locks, checks, image builds
    examples                                the examples repository sync and delivery
    selection                               choices and the one parser
    spawnpage                               the spawn page
    jobs                                    the jobs service: API, queue, the run
    spawner                                 what both spawners share
    local | kube                            one package per mode; never each other
    cli                                     the tkhub command

A module may import its own package and the layers below; the two modes never
import each other. Read from the source with ``ast``: nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
LAYERS = [
    {"errors", "quantity", "files", "settings", "layout", "groups", "__init__"},
    {"gpu", "services", "signin"},
    {"catalog"},
    {"environments", "examples"},
    {"selection"},
    {"spawnpage"},
    {"jobs"},
    {"spawner"},
    {"local", "kube"},
    {"cli"},
]
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((SRC / "tkhub").rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """tkhub modules ``path`` imports (``from a.b import c`` names a.b.c if it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != "tkhub"}


def layer(module: str) -> tuple[int, str]:
    top = module.split(".")[1] if "." in module else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index, top
    raise AssertionError(f"{module}: its package {top!r} is in no layer; add it to LAYERS")


def test_every_import_goes_down_the_layers():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        mine, top = layer(name)
        for target in imports_of(path, set(mods)):
            theirs, their_top = layer(target)
            if theirs > mine or (theirs == mine and their_top != top and mine > 0):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycles():
    mods = modules()
    graph = {name: imports_of(path, set(mods)) for name, path in mods.items()}
    # a package's __init__ re-exporting its own modules is not a cycle of the design
    for name in graph:
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_and_functions_stay_small(name):
    path = modules()[name]
    source = path.read_text()
    assert source.count("\n") <= MAX_MODULE_LINES, f"{name}: over {MAX_MODULE_LINES} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
