"""The floors of docs/architecture.md hold: every import in conformance/ and strategies/
runs downwards, there is no import circle, and no module outgrows 800 lines.

The floors are the ```floors block of docs/architecture.md: one line per floor, bottom
first, each naming one module or several peer modules (dotted names; a package's
``__init__.py`` is the package's name).  A module may import only modules on lower
floors: an import of a module on its own floor is sideways, one on a higher floor runs
upwards.  Every ``import`` statement counts, wherever it is (module level, inside a
function, under ``if TYPE_CHECKING:``); relative imports are resolved.  Importing a
submodule also runs its parent packages' ``__init__.py``: Python does that for any
import, so it is not an edge.  Modules found by name at run time (the engine registry
conformance.names.ENGINE_MODULES, the CLI's command index, golden's lazy re-exports)
are not import statements and are not edges either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("conformance", "strategies")
ARCHITECTURE = ROOT / "docs" / "architecture.md"

MAX_LINES = 800
#: modules allowed over MAX_LINES, and why
TOO_BIG_ON_PURPOSE = {
    "conformance/engines/reference.py":
        "the interpreter mirrors vmstate.c function by function; it stays whole",
}


def read_floors(text: str) -> list[list[str]]:
    """The floors of a ```floors block, bottom first: a list of module names per floor."""
    match = re.search(r"^```floors\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert match, "docs/architecture.md has no ```floors block"
    floors = []
    for line in match.group(1).splitlines():
        names = line.split("#", 1)[0].split()
        if names:
            floors.append(names)
    return floors


def modules(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known) -> list[tuple[int, str]]:
    """(line, imported project module) for every import statement of module ``name``."""

    def project_module(dotted: str | None) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = []
        if isinstance(node, ast.Import):
            targets = [project_module(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # from . import x / from ..y import z
                here = name.split(".") if is_package else name.split(".")[:-1]
                anchor = here[:len(here) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:  # from pkg import submodule: the submodule
                full = f"{base}.{alias.name}"
                targets.append(full if full in known else project_module(base))
        found += [(node.lineno, t) for t in targets if t is not None and t != name]
    return found


def import_graph(root: Path, packages=PACKAGES) -> dict[str, list[tuple[int, str]]]:
    known = modules(root, packages)
    return {name: imports(name, path, known) for name, path in known.items()}


def floor_violations(graph, floors) -> list[str]:
    floor_of = {m: i for i, names in enumerate(floors) for m in names}
    bad = []
    for name, edges in sorted(graph.items()):
        for line, target in edges:
            if name not in floor_of or target not in floor_of:
                continue  # test_every_module_is_on_one_floor names them
            here, there = floor_of[name], floor_of[target]
            if there >= here:
                how = "sideways (same floor)" if there == here else "upwards"
                bad.append(f"{name}:{line} imports {target} {how}: floor {here} -> {there}")
    return bad


def cycles(graph) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (or a
    module importing itself), Tarjan's algorithm, iteratively."""
    succ = {m: sorted({t for _, t in edges if t in graph}) for m, edges in graph.items()}
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = 0
    for start in sorted(succ):
        if start in index:
            continue
        work = [(start, iter(succ[start]))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(succ[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in succ[node]:
                        found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def floors():
    return read_floors(ARCHITECTURE.read_text())


@pytest.fixture(scope="module")
def graph():
    return import_graph(ROOT)


def test_every_module_is_on_one_floor(floors):
    declared = [m for names in floors for m in names]
    twice = sorted({m for m in declared if declared.count(m) > 1})
    actual = set(modules(ROOT))
    assert not twice, f"on more than one floor: {twice}"
    assert not actual - set(declared), f"on no floor: {sorted(actual - set(declared))}"
    assert not set(declared) - actual, f"no such module: {sorted(set(declared) - actual)}"


def test_imports_run_only_downwards(graph, floors):
    assert floor_violations(graph, floors) == []


def test_there_is_no_import_circle(graph):
    assert cycles(graph) == []


def test_no_module_is_over_800_lines():
    over = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            lines = len(path.read_text().splitlines())
            if lines > MAX_LINES and rel not in TOO_BIG_ON_PURPOSE:
                over[rel] = lines
    assert over == {}
    for rel in TOO_BIG_ON_PURPOSE:
        assert (ROOT / rel).is_file(), f"{rel}: gone, drop it from TOO_BIG_ON_PURPOSE"


def test_the_checks_see_every_kind_of_import(tmp_path):
    """A package with an upward import in a function, a sideways one under
    TYPE_CHECKING, a relative one and a circle: each is reported."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "low.py").write_text("def f():\n    from pkg import high\n")
    (pkg / "peer.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.sub import other\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "other.py").write_text("from .. import low\n")
    (pkg / "high.py").write_text("import pkg.low\n")
    g = import_graph(tmp_path, ("pkg",))
    assert ("pkg.sub.other" in {t for _, t in g["pkg.peer"]}
            and ("pkg.low" in {t for _, t in g["pkg.sub.other"]}))
    floors = read_floors("```floors\npkg pkg.sub\npkg.low\npkg.peer pkg.sub.other\n"
                         "pkg.high  # top\n```\n")
    bad = floor_violations(g, floors)
    assert bad == ["pkg.low:2 imports pkg.high upwards: floor 1 -> 3",
                   "pkg.peer:3 imports pkg.sub.other sideways (same floor): floor 2 -> 2"]
    assert cycles(g) == [["pkg.high", "pkg.low"]]
