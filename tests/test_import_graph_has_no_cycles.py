"""gradcmp's modules import one another without a cycle: the import graph, read from the source
with ``ast``, is acyclic.

Every import statement counts, at module level and inside functions alike (an import moved into
a function still ties the two modules together); relative imports are resolved, and
``from P import x`` is an import of the submodule ``P.x`` where ``P.x`` is a module (of ``P``
itself otherwise). Imports under ``if TYPE_CHECKING:`` are left out: they never run, and are
how an annotation names a type without an import. Imports by a computed name
(``importlib.import_module(f"...")``) cannot be read statically and are not counted. Files in a
folder without ``__init__.py`` (gradcmp/data/: loss files read by path) are data, not modules.
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

ROOT = Path(__file__).parents[1] / "gradcmp"


def module_files(root: Path) -> dict[str, Path]:
    """Every importable module under ``root`` (a package): its dotted name → its file. A
    compiled extension (``_fastcsv.cpython-311-x86_64-linux-gnu.so``) is a module too, one that
    imports nothing of ours."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".so", ".pyd") or not path.is_file():
            continue
        parts = (*path.relative_to(root.parent).parent.parts, path.name.partition(".")[0])
        folders = (root.parent.joinpath(*parts[:i]) for i in range(1, len(parts)))
        if not all((folder / "__init__.py").is_file() for folder in folders):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.setdefault(".".join(parts), path)  # a .py before its compiled twin, if any
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST):
    """Every Import and ImportFrom in ``tree``, at any depth, except under TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module ``name`` is, or the innermost known module it is inside; None if outside."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in known:
            return candidate
    return None


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The known modules that module ``name`` (in ``path``) imports, itself excluded."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        if node.level:
            base = package.split(".")
            if node.level > len(base):
                continue  # beyond the top package: not ours
            base = base[: len(base) - node.level + 1]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in known else source)
    resolved = {_resolve(target, known) for target in targets}
    return {module for module in resolved if module is not None and module != name}


def import_graph(root: Path) -> dict[str, set[str]]:
    known = module_files(root)
    return {
        name: imports_of(name, path, known) if path.suffix == ".py" else set()
        for name, path in known.items()
    }


def _strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                components.append(component)
    return components


def _shortest_path(graph: dict[str, set[str]], start: str, goal: str, within: set[str]):
    previous = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = []
            while node is not None:
                path.append(node)
                node = previous[node]
            return path[::-1]
        for child in sorted(graph.get(node, ())):
            if child in within and child not in previous:
                previous[child] = node
                queue.append(child)
    return None


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles, as chains ``[a, b, ..., a]``: for every import that lies on a cycle,
    the shortest cycle through it (so each import to undo is named), each cycle once."""
    found = set()
    for component in _strongly_connected(graph):
        if len(component) < 2:
            continue
        for importer in sorted(component):
            for imported in sorted(graph[importer] & component):
                back = _shortest_path(graph, imported, importer, component)
                loop = [importer, *back]  # importer -> imported -> ... -> importer
                ring = loop[:-1]
                first = ring.index(min(ring))
                ring = ring[first:] + ring[:first]
                found.add((*ring, ring[0]))
    return sorted((list(chain) for chain in found), key=lambda chain: (len(chain), chain))


def chain(cycle: list[str]) -> str:
    return " -> ".join(cycle)


def test_gradcmp_has_no_import_cycle():
    graph = import_graph(ROOT)
    assert len(graph) > 50  # the whole package was read
    found = cycles(graph)
    assert not found, f"{len(found)} import cycle(s):\n" + "\n".join(map(chain, found))


def test_the_graph_reads_every_kind_of_import_and_names_a_cycle_as_a_chain(tmp_path):
    """The reader itself, on a small package: module-level, function-level and relative
    imports, ``from . import module``, a name from a package's ``__init__``; not what is under
    ``if TYPE_CHECKING:`` nor what is outside the package."""
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "data").mkdir()
    files = {
        "__init__.py": "from .api import run\n",
        "api.py": "import os\nfrom pkg.sub import deep\n\ndef run():\n    from . import util\n",
        "util.py": "import typing\nif typing.TYPE_CHECKING:\n    from .api import run\n",
        "sub/__init__.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from .. import api\nNAME = 1\n"
        ),
        "sub/deep.py": "from .. import util\nfrom ..sub import NAME\nimport pkg.other\n",
        "other.py": "def late():\n    import pkg.sub.deep\n",
        "data/loss.py": "import pkg.api\n",  # no __init__.py: a data file, not a module
    }
    for name, text in files.items():
        (root / name).write_text(text)
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.api"},
        "pkg.api": {"pkg.sub.deep", "pkg.util"},
        "pkg.util": set(),
        "pkg.sub": set(),
        "pkg.sub.deep": {"pkg.util", "pkg.sub", "pkg.other"},
        "pkg.other": {"pkg.sub.deep"},
    }
    assert [chain(c) for c in cycles(graph)] == ["pkg.other -> pkg.sub.deep -> pkg.other"]
