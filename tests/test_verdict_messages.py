"""A disagreement's message names the likely bug where its pattern is clear (k × the truth), and
a NaN is called what it is (an invalid operation, with the op and line), never an overflow."""

from __future__ import annotations

import pytest

import gradcmp
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.runner import run
from gradcmp.selftest import PLANTED_BUGS, seed_problem

pytest.importorskip("torch")

BUGS = {bug.name: bug for bug in PLANTED_BUGS}


@pytest.mark.parametrize(
    ("bug", "named"),
    [
        ("missing-half", "×2: a missing ½"),
        ("sum-for-mean", "×6: a sum over the n = 6 rows where the mean belongs"),
        ("n-1-divisor", "×6/5: n−1 instead of n"),
        ("sign-flip", "×−1: a sign flip"),
        ("dropped-row", None),  # not one multiple of the truth: no name is guessed
    ],
)
def test_a_disagreement_names_the_likely_bug(bug, named):
    for result in run(seed_problem(BUGS[bug].loss), ["torch-grad"], [FLOAT32, FLOAT64]).results:
        assert result.verdict == "disagree"
        if named is None:
            assert "×" not in result.why.split("explain")[-1]
        else:
            assert result.why.endswith(")") and named in result.why


NAN_SIDE = """\
PARAMS = {"theta0": 0.5, "theta1": -1.25}

def loss(params, X, y, xp):
    r = params["theta0"] + params["theta1"] * X[:, 0] - y
    return xp.mean(r * r) / 2

def loss_torch(params, X, y):
    import torch
    r = params["theta0"] + params["theta1"] * X[:, 0] - y
    p = torch.zeros_like(r)
    return torch.mean(r * r) / 2 + torch.mean(p * torch.log(p))
"""


def test_a_nan_is_an_invalid_operation_named_at_its_side_and_line(tmp_path):
    path = tmp_path / "nan.py"
    path.write_text(NAN_SIDE)
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(), loss=path, backends="torch-grad", dtypes="float64"
    )
    (row,) = report.results
    # The backend ran its program faithfully: the program itself makes the NaN.
    assert row.verdict == "inconclusive"
    assert row.why.startswith("loss_torch's own graph is not finite here (aten.log.default at")
    assert "overflow" not in row.why
    # The port: the torch side's own graph makes the NaN; the note says where and why.
    port = report.port
    assert port.verdict == "different" and report.exit_code == 1
    assert "loss_torch:" in port.note and f"{path}:11" in port.note
    assert "0·∞" in port.note or "log of 0" in port.note
