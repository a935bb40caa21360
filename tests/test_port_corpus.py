"""Real port traps (tests/ports/): each trap is a different function located at its line, each
clean twin is the same function with no false alarm from any backend, and each kink is a
convention difference, never a finite-difference disagreement."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import gradcmp
from gradcmp.judging.agreement import DISAGREE, INCONCLUSIVE
from gradcmp.judging.runner import OK

sys.path.insert(0, str(Path(__file__).parent))
from ports.corpus import CORPUS  # noqa: E402

pytest.importorskip("torch")
pytest.importorskip("jax")

TRAPS = [e for e in CORPUS if e.kind == "trap"]
TWINS = [e for e in CORPUS if e.kind == "twin"]
KINKS = [e for e in CORPUS if e.kind == "kink"]


def _check(entry, backends: str, dtypes: str = "float64"):
    return gradcmp.compare(str(entry.data), loss=str(entry.file), backends=backends, dtypes=dtypes)


def test_the_corpus_is_large_enough():
    assert len(TRAPS) >= 15 and len(TWINS) >= len(TRAPS)
    assert {e.side for e in TRAPS} == {"loss_torch", "loss_jax"}  # both directions of a port


@pytest.mark.parametrize("entry", TRAPS, ids=lambda e: e.name)
def test_trap_is_a_different_function_located_at_its_line(entry):
    report = _check(entry, "torch-grad,jax-grad")
    port = report.port
    assert report.exit_code == 1, port.note
    assert port.verdict == "different", port.note
    located = {(d.side, Path(d.file).resolve(), d.line) for d in port.divergence}
    assert (entry.side, entry.file.resolve(), entry.line) in located, (port.note, located)
    # Each framework computes what its own graph says: the rows agree with their own sides.
    for r in report.results:
        assert r.status == OK, r.note
        assert r.reference == r.side
        assert r.verdict != DISAGREE, r.why


@pytest.mark.parametrize("entry", TWINS, ids=lambda e: e.name)
def test_twin_is_the_same_function_and_no_backend_raises_an_alarm(entry):
    report = _check(entry, "all", "float32,float64")
    assert report.port.verdict == "same", report.port.note
    assert not report.port.divergence
    assert report.exit_code == 0, [
        (r.backend, r.dtype, r.status, r.why, r.note) for r in report.results
    ]


@pytest.mark.parametrize("entry", KINKS, ids=lambda e: e.name)
def test_kink_is_a_convention_and_finite_differences_are_inconclusive_there(entry):
    report = _check(entry, "torch-grad,jax-grad,finite-diff")
    port = report.port
    assert port.verdict == "convention", port.note
    assert report.exit_code == 1
    assert any(k.side == entry.side and k.line == entry.line for k in port.kinks), port.kinks
    (fd,) = [r for r in report.results if r.backend == "finite-diff"]
    assert fd.verdict != DISAGREE
    if fd.verdict == INCONCLUSIVE:
        assert "kink" in fd.why
