"""The floor plan of k8s/: imports point down, never sideways into a higher area, never in a circle.

Areas, from the bottom: errors, core (the offline pipeline), cluster (the API
server), secrets, nodes, steps (what every command does first), commands, cli.
A module may import its own area and the areas below it; function-level
imports count too, since they are how a cycle hides.
"""

import ast
import pathlib

import pytest

from .conftest import ROOT

PACKAGE = pathlib.Path(ROOT) / "k8s"
AREAS = ("errors", "core", "cluster", "secrets", "nodes", "steps", "commands", "cli")
MAX_LINES = 450  # "under ~400" with room for a docstring's growth


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def area(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


def imports(module):
    """The k8s modules `module` imports, at any level of its code."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "k8s"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.split(".")[0] != "k8s":
                continue
            for alias in node.names:  # `from .core import emit` imports the module k8s.core.emit
                found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in MODULES else target)
    return found - {module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_is_in_an_area():
    assert sorted(m for m in MODULES if area(m) not in AREAS and m != "k8s") == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    if module == "k8s":
        return
    rank = AREAS.index(area(module))
    upward = sorted(t for t in GRAPH[module] if t != "k8s" and AREAS.index(area(t)) > rank)
    assert upward == [], f"{module} ({area(module)}) imports from areas above it"


def test_nothing_below_imports_the_command_line():
    for module, targets in GRAPH.items():
        if area(module) not in ("commands", "cli"):
            assert not {area(t) for t in targets} & {"commands", "cli"}, module


def test_no_module_is_in_an_import_cycle():
    """Tarjan's strongly connected components: any with more than one module is a cycle."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH.get(node, ()):
            if nxt not in MODULES:
                continue
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(MODULES):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_check_sees_imports():
    """The checker itself: it finds the function-level and relative imports it must police."""
    assert "k8s.core.settings" in GRAPH["k8s.steps"]
    assert "k8s.cluster.connection" in GRAPH["k8s.steps"]  # imported inside a method
    assert "k8s.errors" in GRAPH["k8s.core.render"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_small_and_say_what_they_do(module):
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n")
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)}: {lines} lines"
    if lines > 5:
        assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(ROOT)} has no docstring"
