"""Planted bugs (the list gradcmp selftest shows) are caught; the clean twin agrees."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.cli import cli
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.agreement import AGREE, DISAGREE
from gradcmp.judging.runner import OK, run
from gradcmp.selftest import AUTODIFF_BACKENDS, CLEAN, PLANTED_BUGS, run_selftest, seed_problem


@pytest.fixture(params=AUTODIFF_BACKENDS)
def autodiff_backend(request):
    if missing_modules(BACKENDS[request.param]):
        pytest.skip(f"{request.param} not installed")
    return request.param


@pytest.mark.parametrize("bug", PLANTED_BUGS, ids=lambda b: b.name)
def test_planted_bug_is_caught_in_float64(bug, autodiff_backend):
    (result,) = run(seed_problem(bug.loss), [autodiff_backend], [FLOAT64]).results
    assert result.status == OK, result.note
    assert result.verdict == DISAGREE
    assert "more than float64 rounding can explain" in result.why


@pytest.mark.parametrize("bug", PLANTED_BUGS, ids=lambda b: b.name)
def test_planted_bug_in_float32_is_caught_unless_it_is_a_no_op(bug, autodiff_backend):
    (result,) = run(seed_problem(bug.loss), [autodiff_backend], [FLOAT32]).results
    expected = AGREE if "float32" in bug.no_op_in else DISAGREE
    assert result.verdict == expected


def test_clean_twin_agrees(autodiff_backend):
    results = run(seed_problem(CLEAN.loss), [autodiff_backend], [FLOAT32, FLOAT64]).results
    assert [r.verdict for r in results] == [AGREE, AGREE]


def test_selftest_command_passes_and_prints_the_table():
    if all(missing_modules(BACKENDS[b]) for b in AUTODIFF_BACKENDS):
        pytest.skip("no autodiff backend installed")
    result = CliRunner().invoke(cli, ["selftest"])
    assert result.exit_code == 0, result.output
    for bug in PLANTED_BUGS:
        assert bug.name in result.output
    assert "selftest passed" in result.output


def test_selftest_refuses_native():
    result = CliRunner().invoke(cli, ["selftest", "-b", "native"])
    assert result.exit_code == 2
    assert result.stderr.startswith("gradcmp: error: native cannot run planted bugs")
    assert "which it does not differentiate by autodiff" in result.stderr


def test_selftest_fails_when_a_bug_is_missed(monkeypatch):
    # A rule that can see nothing (every bound infinite) must make selftest fail, not pass.
    if all(missing_modules(BACKENDS[b]) for b in AUTODIFF_BACKENDS):
        pytest.skip("no autodiff backend installed")
    from gradcmp.reference.compute import ReferenceValues

    monkeypatch.setattr(ReferenceValues, "bound", lambda *args: None)
    assert not run_selftest().passed
    assert CliRunner().invoke(cli, ["selftest"]).exit_code == 1


def test_port_selftest_catches_every_port_bug_on_its_side():
    result = CliRunner().invoke(cli, ["selftest", "--ports"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if line.rstrip().endswith("caught")]
    assert len(rows) == 1 + 6  # the header and one row per planted port bug
    assert "MISSED" not in result.output


def test_selftest_plants_through_any_backend_that_differentiates_the_loss():
    """torch-func, jax-jit and jax-fwd differentiate the loss too (the message used to say
    "only autodiff backends", refusing them)."""
    result = CliRunner().invoke(cli, ["selftest", "-b", "torch-func,jax-jit,jax-fwd"])
    assert result.exit_code == 0, result.output + result.stderr
    assert "all 6 planted bugs caught in float64 by torch-func, jax-jit, jax-fwd" in result.output
