"""The layers of CONTRIBUTING.md hold in src/: every import between packages goes to the
same layer or a lower one, and no packages import each other in a circle.

Imports are read with ``ast`` from every module (function-local and ``TYPE_CHECKING`` ones
included); a top-level module (``solve.py``, ``errors.py``...) is a package of its own and
``lazykernels/__init__.py`` is ``__init__``."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import lazykernels

ROOT = Path(lazykernels.__file__).parent
CONTRIBUTING = ROOT.parents[1] / "CONTRIBUTING.md"


def layer_table(text: str) -> dict[str, int]:
    """package -> layer number, from the "## Layers" table of CONTRIBUTING.md."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    table: dict[str, int] = {}
    for row in re.findall(r"^\| (\d+) [^|]*\| ([^|]+) \|$", section, re.M):
        for name in row[1].split(","):
            table[name.strip().strip("`")] = int(row[0])
    return table


def package_of(module: str) -> str:
    """``lazykernels.codegen.cpp`` -> ``codegen``; ``lazykernels`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


@cache
def imports() -> list[tuple[str, str, str]]:
    """(importing package, imported package, "file:line") of every import between packages."""
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        module, is_package = _module_name(path)
        here = package_of(module) if module.count(".") else "__init__"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if node.module is None:  # from . import x: the submodules x
                    targets = [f"{target}.{a.name}" for a in node.names]
                else:
                    targets = [target]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for t in targets:
                if t.split(".")[0] == "lazykernels" and package_of(t) != here:
                    found.append((here, package_of(t), f"{path.name}:{node.lineno}"))
    return found


def cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    """A circle of the directed graph ``edges`` (as a path of nodes), or None."""
    graph: dict[str, set[str]] = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_checker_sees_circles_and_reads_the_table():
    assert cycle({("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert cycle({("a", "b"), ("a", "c"), ("b", "c")}) is None
    table = layer_table("## Layers\n\n| 0 base | errors, version |\n| 3 x | codegen |\n")
    assert table == {"errors": 0, "version": 0, "codegen": 3}


def test_every_package_is_in_the_layer_table():
    table = layer_table(CONTRIBUTING.read_text())
    packages = {package_of(_module_name(p)[0]) for p in ROOT.rglob("*.py")}
    packages.discard("__init__")
    assert packages | {"__init__"} <= set(table), sorted(packages - set(table))


def test_imports_go_down_the_layers():
    table = layer_table(CONTRIBUTING.read_text())
    upward = [
        f"{where}: {a} (layer {table[a]}) imports {b} (layer {table[b]})"
        for a, b, where in imports()
        if table[b] > table[a]
    ]
    assert not upward, "\n".join(upward)


def test_no_packages_import_each_other_in_a_circle():
    found = cycle({(a, b) for a, b, _ in imports()})
    assert found is None, " -> ".join(found or [])


def test_function_local_imports_between_packages_say_why():
    silent = []
    for path in sorted(ROOT.rglob("*.py")):
        module, is_package = _module_name(path)
        here = package_of(module) if module.count(".") else "__init__"
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        top = {id(n) for n in tree.body}
        top |= {id(m) for n in tree.body if isinstance(n, ast.If) for m in n.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom) or not node.level or id(node) in top:
                continue
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            if package_of(target) != here and "#" not in lines[node.lineno - 1]:
                silent.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not silent, silent
