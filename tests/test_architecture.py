"""The layout rule of docs/architecture.md, checked against the code's imports.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING`` (a
type-only import is still a dependency a reader has to follow). The rule is read from the
architecture page's diagram, so the picture and the code cannot drift apart: an import
the diagram does not allow fails, and so does an arrow no import uses.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from tests import ROOT

ARCHITECTURE = ROOT / "docs" / "architecture.md"
MAX_LINES = 350
MAX_TOP_LEVEL = 8


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("core", "bots"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _owner(target: str) -> str | None:
    """The project module that defines ``target`` (a module, or a name inside one)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _imports(name: str, path: Path) -> Iterator[str]:
    """The project modules ``name`` imports, wherever in the file the import stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: the project imports absolutely, never relatively"
            base = node.module or ""
            # ``from pkg import mod`` depends on mod; ``from mod import name`` on mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            owner = _owner(target)
            if owner is not None and owner != name:
                yield owner


GRAPH = {name: set(_imports(name, path)) for name, path in MODULES.items()}


def layer(module: str) -> str:
    """The box of the diagram a module belongs to."""
    parts = module.split(".")
    if parts[0] == "bots":
        return "bots"
    if module == "core.runtime":
        return "runtime"
    if len(parts) > 2 or (len(parts) == 2 and MODULES[module].name == "__init__.py"):
        return parts[1]  # core.storage.db -> storage
    return "base"  # core's top-level modules: settings, errors, types, keys, logs, metrics


def _diagram() -> set[tuple[str, str]]:
    """The arrows of the mermaid diagram: ``A --> B`` means A may import B."""
    text = ARCHITECTURE.read_text()
    block = re.search(r"```mermaid\n(.*?)```", text, re.DOTALL)
    assert block, "docs/architecture.md has no mermaid diagram"
    arrows = set()
    for line in block.group(1).splitlines():
        found = re.fullmatch(r"\s*(\w+)(?:\[[^\]]*\])?\s*-->\s*(\w+)(?:\[[^\]]*\])?\s*", line)
        if found:
            arrows.add((found.group(1), found.group(2)))
    return arrows


def test_every_import_follows_an_arrow_of_the_diagram() -> None:
    allowed = _diagram()
    wrong = sorted(
        f"{source} imports {target} ({layer(source)} -> {layer(target)})"
        for source, targets in GRAPH.items()
        for target in targets
        if layer(source) != layer(target) and (layer(source), layer(target)) not in allowed
    )
    assert not wrong, "imports across the rule of docs/architecture.md:\n" + "\n".join(wrong)


def test_every_arrow_of_the_diagram_is_an_import() -> None:
    used = {(layer(s), layer(t)) for s, targets in GRAPH.items() for t in targets if layer(s) != layer(t)}
    unused = sorted(f"{a} --> {b}" for a, b in _diagram() - used)
    assert not unused, "the diagram shows arrows no module uses:\n" + "\n".join(unused)


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    cycles = _cycles()
    assert not cycles, "modules that import each other, directly or around a loop:\n" + "\n".join(
        " <-> ".join(c) for c in cycles
    )


def test_no_module_is_over_the_size_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): n for path in MODULES.values() if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_core_keeps_few_modules_at_its_top_level() -> None:
    top = sorted(p.name for p in (ROOT / "core").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL, f"core/ has {len(top)} top-level modules: {top}"


def test_the_rule_catches_a_wrong_import() -> None:
    """The checker itself: storage importing the conversations layer is refused."""
    assert layer("core.storage.db") == "storage" and layer("core.settings") == "base"
    assert layer("core.conversations.service") == "conversations" and layer("bots.slack.app") == "bots"
    assert ("storage", "conversations") not in _diagram()
    assert ("agents", "storage") not in _diagram()
