"""The dtype ladder: float64, float32, float16, bfloat16 — each judged with its own u, and
skipped with the reason where the data holds a value the dtype cannot."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.cli import cli
from gradcmp.dtypes import BFLOAT16, DTYPES, FLOAT16, parse_dtypes
from gradcmp.judging.agreement import AGREE, DISAGREE, INCONCLUSIVE
from gradcmp.judging.runner import run
from gradcmp.selftest import PLANTED_BUGS, seed_problem


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize(
    ("dtype", "u", "largest"),
    [
        ("float64", 2.0**-53, np.finfo(np.float64).max),
        ("float32", 2.0**-24, np.finfo(np.float32).max),
        ("float16", 2.0**-11, np.finfo(np.float16).max),  # 65504
        ("bfloat16", 2.0**-8, 3.3895313892515355e38),
    ],
)
def test_constants(dtype, u, largest):
    assert DTYPES[dtype].unit_roundoff == u
    assert DTYPES[dtype].max_value == Fraction(float(largest))
    assert DTYPES[dtype].round(np.array([largest])).astype(np.float64)[0] == largest


def test_aliases():
    assert parse_dtypes("bf16,half,f32,double") == [
        BFLOAT16,
        FLOAT16,
        DTYPES["float32"],
        DTYPES["float64"],
    ]


def test_the_seed_in_float16_agrees_and_in_bfloat16_cannot_be_certified():
    # γ_n(2**-8) is 2.7 % of M already at n = 6 (with c): bfloat16 is inconclusive, honestly.
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(), backends="all", dtypes="float16,bfloat16"
    )
    verdicts = {(r.backend, r.dtype): r.verdict for r in report.results if r.status == "ok"}
    skipped = [r for r in report.results if r.status != "ok"]
    assert all("does not compute in" in r.note for r in skipped), [r.note for r in skipped]
    assert {v for (b, d), v in verdicts.items() if d == "float16"} == {AGREE}
    assert {v for (b, d), v in verdicts.items() if d == "bfloat16"} == {INCONCLUSIVE}


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_missing_half_is_still_caught_in_low_precision(dtype):
    (bug,) = [b for b in PLANTED_BUGS if b.name == "missing-half"]
    results = run(seed_problem(bug.loss), ["torch-grad", "jax-grad"], [DTYPES[dtype]]).results
    assert {r.verdict for r in results} == {DISAGREE}


def test_data_float16_cannot_hold_skips_float16():
    report = gradcmp.compare(
        (np.array([1.0, 70000.0]), np.array([1.0, 2.0])),
        backends=["native"],
        dtypes="float16,float32",
    )
    by_dtype = {r.dtype: r for r in report.results}
    assert by_dtype["float16"].status == "skipped"
    assert "overflows float16" in by_dtype["float16"].note
    assert by_dtype["float32"].verdict == AGREE


def test_an_input_float32_cannot_hold_skips_float32(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("x,y\n1,2\n1e39,3\n")
    result = invoke("run", "--data", str(path), "-b", "native", "--format", "json")
    assert result.exit_code == 0, result.output
    by_dtype = {r["dtype"]: r for r in json.loads(result.output)["results"]}
    assert by_dtype["float32"]["status"] == "skipped"
    assert by_dtype["float32"]["note"] == "not computed: x row 2 = 1e+39 overflows float32"
    assert by_dtype["float64"]["verdict"] == "agree"
    # Nothing computed at all: inconclusive, a warning (exit 4 under --strict).
    only32 = ("run", "--data", str(path), "-b", "native", "--dtype", "float32")
    assert invoke(*only32).exit_code == 0
    assert invoke(*only32, "--strict").exit_code == 4
