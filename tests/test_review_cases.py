"""Cases found in review: underflow and flush-to-zero, overflow, inputs a dtype cannot hold,
and odd options. Each was a false alarm or a crash before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.agreement import DISAGREE, INCONCLUSIVE
from gradcmp.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


BACKENDS = ["native", "torch-grad", "jax-grad"]


@pytest.mark.parametrize(
    ("X", "y", "params", "dtype"),
    [
        # squares of 1e-20 are subnormal in float32; XLA on CPU flushes them to zero
        ([1.0, 2.0, 3.0], [1e-20, 2e-20, 3e-20], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-39, 2e-39, 3e-39], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-310, 2e-310, 3e-310], None, "float64"),
        # an underflow in g·r_i, then multiplied by a huge x_ij
        ([2.0**100] * 3, [3 * 2.0**-149] * 3, None, "float32"),
        ([2.0**1000] * 3, [3 * 2.0**-1074] * 3, None, "float64"),
        # θ1_0·x_i0 underflows in the residual, which then meets x_i1 = 2**127
        ([[2.0**-147, 2.0**100]] * 3, [1.0] * 3, {"theta1": [1.125, 0.0]}, "float32"),
    ],
)
def test_underflow_is_never_a_false_alarm(X, y, params, dtype):
    report = gradcmp.compare(
        (np.array(X), np.array(y)), params=params, backends=BACKENDS, dtypes=dtype
    )
    for r in report.results:
        assert r.status == "ok", r.note
        assert r.verdict != DISAGREE, (r.backend, r.why)


def test_overflow_beyond_the_range_is_inconclusive_not_a_bug():
    report = gradcmp.compare(
        gradcmp.data.bundled_path(), params={"theta1": 1e308}, backends=["native"], dtypes="float64"
    )
    (r,) = report.results
    assert r.verdict == INCONCLUSIVE and "beyond float64's range" in r.why
    assert report.exit_code == 0


def test_overflow_inside_the_range_is_a_disagreement_that_says_so():
    # Σr² overflows float32 although the exact mean (1.125e38) fits in it.
    report = gradcmp.compare(
        (np.array([1.5e19, 1.5e19]), np.zeros(2)),
        params={"theta1": 1.0},
        backends=["native"],
        dtypes="float32",
    )
    (r,) = report.results
    assert r.verdict == DISAGREE
    assert "float32 overflowed although the exact value is in its range" in r.why


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


def test_a_failed_backend_exits_3_even_without_b(monkeypatch):
    from gradcmp.backends import BACKENDS as REGISTRY
    from gradcmp.backends.jax_grad import JaxGrad

    def broken(self, problem, dtype):
        raise ImportError("jaxlib is broken")

    monkeypatch.setattr(JaxGrad, "compute", broken)
    assert "jax-grad" in REGISTRY
    result = invoke("run", "--format", "json")
    assert result.exit_code == 3
    statuses = {
        r["status"] for r in json.loads(result.output)["results"] if r["backend"] == "jax-grad"
    }
    assert statuses == {"failed"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-b", ""], "no backend named"),
        (["-b", "exact"], "exact is the reference"),
        (["--dtype", ""], "no dtype named"),
        (["--param", "theta1[ ]=1"], "no element"),
        (["--param", "theta1=0e99999999999"], None),
        (["--param", "theta1=1e-99999999999"], "far below float64's range"),
        (["--output", ""], "cannot write a report to ''"),
        (["--data", ""], "the data path is empty"),
    ],
)
def test_odd_options(args, fragment):
    result = invoke("run", *args)
    if fragment is None:  # 0e99999999999 is exactly 0, quickly
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("gradcmp: error: ") and fragment in line


def test_report_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = invoke("run", "-b", "native", "--report-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert "cannot create the report directory" in result.stderr


def test_integers_beyond_2_53_keep_their_exact_values():
    X = np.array([1, 2, 2**53 + 1, 2**60 + 3], dtype=np.int64)
    report = gradcmp.compare((X, np.arange(4)), params={"theta1": 1}, backends=["native"])
    assert report.reference.rounding["float64"].rounded == 2
    # The as-written reference is for the integers given, not their float64 roundings.
    assert report.reference.as_written.loss != report.reference.by_dtype["float64"].loss


def test_float_params_are_the_binary_numbers_they_are():
    report = gradcmp.compare(
        gradcmp.data.bundled_path(), params={"theta0": 0.1}, backends=["native"]
    )
    assert report.reference.rounding["float64"].rounded == 0  # 0.1 as a float is a float64
    assert report.reference.rounding["float32"].rounded == 1


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("x,y\r1,2\r", 1, "carriage return inside a line"),
        ("x,y\n1,\u00a02\n", 2, "is not a decimal number"),  # a no-break space is not ASCII
        ("x,y\n1,2\n3,\x0c4\n5,6\n", 3, "is not a decimal number"),  # form feed: one line
        ("x,y\n1,2\u20283\n", 2, "is not a decimal number"),  # U+2028 does not end a line
    ],
)
def test_line_ends_and_blanks(tmp_path, content, line, fragment):
    path = tmp_path / "d.csv"
    path.write_bytes(content.encode())
    result = invoke("run", "--data", str(path), "-b", "native")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gradcmp: error: {path}:{line}: ")
    assert fragment in result.stderr


def test_malformed_baseline_entries(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"results": [{"backend": "native"}]}))
    result = invoke("run", "-b", "native", "--baseline", str(path))
    assert result.exit_code == 2 and "not a gradcmp JSON report" in result.stderr
