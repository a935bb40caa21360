"""The port-trap corpus is what corpus.py says it is: pairs one line apart, markers on the side
they name, data files that exist. Text only: no framework is imported here
(check_with_frameworks.py runs the files with torch and JAX)."""

from __future__ import annotations

import ast
import csv
import difflib

import pytest
from corpus import CORPUS, KINKS, TRAPS, TWINS, entry


def changed_lines(a, b) -> list[int]:
    """1-based lines of ``a`` that differ from ``b`` (both files the same length)."""
    left, right = a.read_text().splitlines(), b.read_text().splitlines()
    assert len(left) == len(right), (a.name, b.name)
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    return [
        n + 1
        for tag, i1, i2, _, _ in matcher.get_opcodes()
        if tag != "equal"
        for n in range(i1, i2)
    ]


def test_the_corpus_is_big_enough():
    assert len(TRAPS) >= 16
    assert sum(e.side == "loss_torch" for e in TRAPS) >= 4
    assert sum(e.side == "loss_jax" for e in TRAPS) >= 4
    assert KINKS
    # every trap and kink has its twin, every twin a trap or kink
    assert {e.name for e in TRAPS + KINKS} == {e.name for e in TWINS}
    assert len(TRAPS) + len(KINKS) == len(TWINS)


@pytest.mark.parametrize("e", TRAPS, ids=[e.name for e in TRAPS])
def test_a_trap_differs_from_its_twin_in_the_marked_line_only(e):
    assert changed_lines(e.file, e.twin) == [e.line]


@pytest.mark.parametrize("e", KINKS, ids=[e.name for e in KINKS])
def test_a_kink_is_its_twin_on_other_data(e):
    kink, twin = e.file.read_text().splitlines(), e.twin.read_text().splitlines()
    data_line = next(n for n, line in enumerate(kink, 1) if line.startswith("DATA = "))
    assert set(changed_lines(e.file, e.twin)) <= {1, data_line, e.line}
    # the code of the marked line is the twin's: only the comment was added
    assert kink[e.line - 1].split("  # KINK:")[0] == twin[e.line - 1]
    assert entry(e.twin).data != e.data


@pytest.mark.parametrize("e", CORPUS, ids=[e.file.stem for e in CORPUS])
def test_a_corpus_file_is_a_loss_file_with_its_data(e):
    tree = ast.parse(e.file.read_text())
    doc = ast.get_docstring(tree)
    assert doc and "\n" not in doc.strip() and e.data.name in doc, e.file.name
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert names == {"loss_torch", "loss_jax"}, names  # no generic loss: a port
    assigned = {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    assert {"PARAMS", "DATA"} <= assigned
    params = next(
        ast.literal_eval(n.value)
        for n in tree.body
        if isinstance(n, ast.Assign) and n.targets[0].id == "PARAMS"
    )
    assert params and all(name.isidentifier() for name in params)
    assert e.data.is_file(), e.data
    with open(e.data, newline="") as handle:
        rows = list(csv.reader(handle))
    assert "y" in rows[0] and 8 <= len(rows) - 1 <= 32
    assert all(len(row) == len(rows[0]) for row in rows)
