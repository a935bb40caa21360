"""The port-trap corpus: one entry per file of tests/ports/, read from the files themselves.

Every pair ``NAME`` is two loss files in this folder:

* ``NAME_trap.py`` and ``NAME_twin.py``: the same PyTorch ↔ JAX port, done wrong and done
  right. They differ in exactly one line, the one the trap marks with ``# TRAP: <what is
  wrong>``; it is on the side that was ported (``loss_jax`` for a torch → JAX port,
  ``loss_torch`` for JAX → torch). A trap computes a different function, so gradcmp should
  say the sides part there.
* ``NAME_kink.py`` and ``NAME_twin.py``: the same code on two data files. The twin's data keep
  every kink and tie away; the kink's data hit one exactly, at the line marked ``# KINK:``.
  The two sides compute the same function there, but their frameworks differentiate the kink
  by different conventions: values agree, gradients do not. (The kink differs from its twin
  in its docstring, its DATA line and the marker comment; the code is the same.)

Each file names its data file in ``DATA`` (a name inside ``tests/ports/data/``). ``CORPUS`` is
the table the end-to-end tests iterate over; ``line`` is found by reading the file for its
marker, never written down here, so editing a file cannot leave the table stale. A trap and its
twin have the same number of lines: the twin's line ``line`` is the right version of it.

Data: features4.csv (16 rows, 4 features, regression), binary4.csv (16 rows, labels 0/1),
labels3.csv (18 rows, labels 0/1/2, written as floats: the losses convert them), ties4.csv
(12 rows of integer features: the kink files' data, with dyadic PARAMS so that a tie is exact;
"row 1" in a kink's docstring counts data rows from 0, the header excluded). On the twins'
data every kink and tie of the corpus (ReLU, leaky ReLU and clamp at 0, clip at ±1, maxout
ties, |residual| at 0 and at the Huber threshold) is at least 0.02 away.

``python tests/ports/corpus.py`` prints the table.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
KINDS = ("trap", "twin", "kink")
MARKERS = {"trap": "# TRAP:", "kink": "# KINK:"}
SIDES = ("loss_torch", "loss_jax")


class Entry(NamedTuple):
    name: str  # the pair's name: the file is NAME_KIND.py
    file: Path  # the loss file (absolute)
    data: Path  # its data file (absolute), from the file's DATA
    kind: str  # "trap" | "twin" | "kink"
    side: str  # the function holding the marked line: "loss_torch" | "loss_jax"; "" for a twin
    line: int | None  # 1-based line of the TRAP/KINK marker in ``file``; None for a twin
    description: str  # the marker's text (trap, kink) or the module docstring (twin)
    twin: Path | None  # for a trap or kink, its clean twin; None for a twin


def _marker(lines: list[str], marker: str, path: Path) -> tuple[int, str]:
    hits = [(n, line) for n, line in enumerate(lines, 1) if marker in line]
    if len(hits) != 1:
        raise ValueError(f"{path.name}: {len(hits)} lines carry {marker!r}, expected one")
    n, line = hits[0]
    return n, line.split(marker, 1)[1].strip()


def _enclosing_function(tree: ast.Module, line: int) -> str:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.lineno <= line <= node.end_lineno:
            return node.name
    return ""


def _data_name(tree: ast.Module, path: Path) -> str:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["DATA"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise ValueError(f"{path.name}: no module-level DATA = '<file name>'")


def entry(path: Path) -> Entry:
    """The table row of one corpus file."""
    path = Path(path).resolve()
    name, _, kind = path.stem.rpartition("_")
    if kind not in KINDS:
        raise ValueError(f"{path.name}: not NAME_trap.py, NAME_twin.py or NAME_kink.py")
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    data = DATA_DIR / _data_name(tree, path)
    if kind == "twin":
        for marker in MARKERS.values():
            if marker in text:
                raise ValueError(f"{path.name}: a twin carries {marker!r}")
        doc = (ast.get_docstring(tree) or "").strip()
        return Entry(name, path, data, kind, "", None, doc, None)
    line, description = _marker(text.splitlines(), MARKERS[kind], path)
    side = _enclosing_function(tree, line)
    if side not in SIDES:
        raise ValueError(f"{path.name}:{line}: the marker is not inside loss_torch or loss_jax")
    return Entry(name, path, data, kind, side, line, description, path.with_name(f"{name}_twin.py"))


def load(folder: Path = HERE) -> list[Entry]:
    """Every corpus file of ``folder``, sorted by pair name, the trap or kink before its twin."""
    order = {"trap": 0, "kink": 0, "twin": 1}
    files = [p for p in folder.glob("*_*.py") if p.stem.rpartition("_")[2] in KINDS]
    return sorted((entry(p) for p in files), key=lambda e: (e.name, order[e.kind]))


CORPUS: list[Entry] = load()
TRAPS = [e for e in CORPUS if e.kind == "trap"]
TWINS = [e for e in CORPUS if e.kind == "twin"]
KINKS = [e for e in CORPUS if e.kind == "kink"]


if __name__ == "__main__":
    width = max(len(e.file.name) for e in CORPUS)
    for e in CORPUS:
        line = "" if e.line is None else str(e.line)
        head = f"{e.file.name:<{width}}  {e.data.name:<14} {e.kind:<5} {e.side:<10} {line:>3}"
        print(f"{head}  {e.description}")
