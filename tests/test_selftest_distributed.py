"""``gradcmp selftest --distributed``: every bug planted in a distributed step is caught, every
clean set-up agrees; and the example in examples/distributed_step/ says what its README says.

The selftest runs once (float64 only: its worlds dominate the time), through the library."""

from __future__ import annotations

import ast
import dataclasses
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from gradcmp.api import compare
from gradcmp.cli import cli
from gradcmp.errors import UsageError
from gradcmp.judging.agreement import AGREE, DISAGREE
from gradcmp.judging.runner import OK
from gradcmp.selftest import distributed as sd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed_step"
DATA = ROOT / "data" / "xy.csv"
EXAMPLE_BACKENDS = "torch-dist:4,jax-dist:4"


@pytest.fixture(scope="module")
def selftest() -> sd.DistributedSelftest:
    return sd.run_distributed_selftest(dtypes=("float64",))


def test_every_planted_bug_is_caught_in_float64(selftest):
    planted = [row for row in selftest.rows if row.case.expected == sd.CAUGHT]
    assert [row.case for row in planted] == list(sd.PLANTED)
    for row in planted:
        assert row.got == sd.CAUGHT, (row.case.name, row.got, row.note)
        assert row.exit_code == 1, row.case.name
        ratio = row.ratios["float64"]
        # A caught bug moves its worst gradient element far from the truth (or makes it NaN).
        assert ratio is not None and not abs(ratio - 1) < 1e-3, (row.case.name, ratio)


def test_the_bugs_with_a_known_factor_are_off_by_it(selftest):
    ratio = {row.case.name: row.ratios["float64"] for row in selftest.rows}
    assert ratio["summed-not-averaged"] == pytest.approx(2)  # Σ over N = 2 ranks, never ÷N
    assert ratio["accumulation-no-÷k"] == pytest.approx(3)  # k = 3 micro-batches, never ÷k
    assert ratio["extra-psum"] == pytest.approx(4)  # psum'd twice over N = 4 devices
    assert math.isnan(ratio["empty-device-mean"])  # 0/0 on the two devices without rows


def test_every_clean_setup_agrees(selftest):
    clean = [row for row in selftest.rows if row.case.expected == AGREE]
    assert {row.case.backend for row in clean} == {
        "torch-ddp:4",
        "torch-fsdp:4",
        "jax-sharded:4",
        "jax-shardmap:4",
        "torch-dist:4",
        "jax-dist:4",
    }
    for row in clean:
        assert row.got == AGREE, (row.case.backend, row.got, row.note)
        assert row.exit_code == 0
        assert row.ratios["float64"] == pytest.approx(1, rel=1e-12), row.case.backend
        assert set(row.ratios) == {"float64"}  # float32 not run


def test_the_selftest_passes_and_the_command_exits_0(selftest, monkeypatch):
    assert selftest.passed
    monkeypatch.setattr(sd, "run_distributed_selftest", lambda **options: selftest)
    result = CliRunner().invoke(cli, ["selftest", "--distributed"])
    assert result.exit_code == 0, result.output
    assert "selftest --distributed passed" in result.output
    for case in (*sd.PLANTED, *sd.CLEAN):
        assert case.backend in result.output


def test_a_missed_bug_fails_the_command(selftest, monkeypatch):
    rows = list(selftest.rows)
    rows[0] = dataclasses.replace(rows[0], got="missed", exit_code=0)
    missed = dataclasses.replace(selftest, rows=rows)
    assert not missed.passed
    monkeypatch.setattr(sd, "run_distributed_selftest", lambda **options: missed)
    result = CliRunner().invoke(cli, ["selftest", "--distributed"])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "expected caught, got missed" in result.output


def test_distributed_is_given_alone():
    result = CliRunner().invoke(cli, ["selftest", "--distributed", "--ports"])
    assert result.exit_code == 2


@pytest.mark.parametrize("case", [*sd.PLANTED, sd.CLEAN[0]], ids=lambda c: c.file)
def test_each_planted_file_says_what_it_plants_and_defines_its_side(case):
    tree = ast.parse(sd.planted_path(case.file).read_text(encoding="utf-8"))
    doc = ast.get_docstring(tree)
    assert doc and doc.split()[0] == ("Plants" if case.expected == sd.CAUGHT else "Clean:")
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    sides = {case.side} if case.side != "—" else {sd.TORCH, sd.JAX}
    assert {"loss", *sides} <= functions


def test_the_example_step_agrees():
    report = compare(
        DATA, loss=EXAMPLE / "ridge_step.py", backends=EXAMPLE_BACKENDS, dtypes="float64"
    )
    assert report.exit_code == 0
    assert [(r.backend, r.status, r.verdict) for r in report.results] == [
        ("torch-dist:4", OK, AGREE),
        ("jax-dist:4", OK, AGREE),
    ]


def test_the_example_twin_is_caught_on_its_torch_side():
    # Its torch side only: the JAX side is the clean file's, line for line (checked here), and
    # a world fewer keeps this file's time in bounds.
    buggy = (EXAMPLE / "ridge_step_buggy.py").read_text(encoding="utf-8")
    clean = (EXAMPLE / "ridge_step.py").read_text(encoding="utf-8")
    assert buggy.split("def grad_jax_dist")[1] == clean.split("def grad_jax_dist")[1]
    report = compare(
        DATA, loss=EXAMPLE / "ridge_step_buggy.py", backends="torch-dist:4", dtypes="float64"
    )
    assert report.exit_code == 1
    (torch_side,) = report.results
    assert (torch_side.backend, torch_side.status, torch_side.verdict) == (
        "torch-dist:4",
        OK,
        DISAGREE,
    )
    # Every rank kept its own gradient: ranks 1–3 differ from rank 0, in both parameters.
    differ = [s for s in torch_side.world["ranks"] if s["status"] == "differs"]
    assert [s["rank"] for s in differ] == [1, 2, 3]
    assert all(set(s["parameters"]) == {"theta0", "theta1"} for s in differ)


def test_float64_is_required():
    with pytest.raises(UsageError):
        sd.run_distributed_selftest(dtypes=("float32",))
