"""The folders are the architecture: lower layers never import upper ones, no import circle,
small modules and functions.

Imports are read from the source (module level and inside functions; ``TYPE_CHECKING``
blocks are left out, since they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import cqrs

PACKAGE = Path(cqrs.__file__).parent

#: Bottom to top. A module may import its own layer and the ones below.
LAYERS: list[tuple[str, ...]] = [
    ("core",),
    ("store",),
    ("schema", "events"),
    ("sync",),
    ("write",),
    ("read",),
    ("system",),
    ("app", "aws"),
    ("cli", "deploy", "testing", "http"),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def runtime_imports(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every ``cqrs`` import that can run."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for child in node.body for n in ast.walk(child)}
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("cqrs"):
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("cqrs")]
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__main__.py")


def test_every_module_belongs_to_a_layer() -> None:
    loose = [module_name(p) for p in MODULES if p != PACKAGE / "__init__.py"]
    assert [m for m in loose if top(m) not in LAYER] == []


def test_lower_layers_never_import_upper_ones() -> None:
    violations = []
    for path in MODULES:
        here = top(module_name(path))
        if here is None:  # cqrs/__init__.py: the public names, lazily
            continue
        for line, target in runtime_imports(path):
            there = top(target)
            if there is not None and LAYER[there] > LAYER[here]:
                violations.append(f"{module_name(path)}:{line} imports {target}")
    assert violations == []


def test_no_import_circle_between_modules() -> None:
    names = {module_name(p): p for p in MODULES}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text())
        top_level = {id(n) for n in tree.body}
        edges = set()
        for line, target in runtime_imports(path):
            node_is_top = any(
                getattr(n, "lineno", None) == line and id(n) in top_level for n in tree.body
            )
            if node_is_top and target in names and target != name:
                edges.add(target)
        graph[name] = edges
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])
    # A package __init__ re-exporting its own submodules is not a circle.
    real = [c for c in cycles if not all(c[0].startswith(m) or m.startswith(c[0]) for m in c)]
    assert real == []


def test_modules_are_small() -> None:
    big = {module_name(p): n for p in MODULES if (n := len(p.read_text().splitlines())) > 400}
    assert big == {}


def test_functions_are_short() -> None:
    long = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module_name(path)}.{node.name}: {length}")
    assert long == []
