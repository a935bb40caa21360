"""The Python API: gradcmp.compare and gradcmp.testing.assert_gradients_agree."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.cli import cli
from gradcmp.errors import UsageError
from gradcmp.testing import GradcmpWarning, assert_gradients_agree

VOLATILE = ("timings", "environment")


def stable(report: dict) -> dict:
    report = {k: v for k, v in report.items() if k not in VOLATILE}
    report["results"] = [{**r, "seconds": None} for r in report["results"]]
    return report


def test_compare_path_equals_the_cli_json_report():
    report = gradcmp.compare(gradcmp.loading.data.bundled_path(), backends=["native"])
    cli_report = json.loads(
        CliRunner().invoke(cli, ["run", "-b", "native", "--format", "json"]).output
    )
    api_report = report.to_dict()
    assert api_report["verdict"] == "agree" and report.verdict == "agree"
    assert stable(api_report) | {"data": None} == stable(cli_report) | {"data": None}
    assert api_report["data"]["sha256"] == cli_report["data"]["sha256"]


def test_compare_arrays_and_params():
    x = np.arange(1.0, 7.0)
    y = np.array([13.0, 14, 20, 21, 25, 30])
    report = gradcmp.compare((x, y), params={"theta0": 0.5}, backends="native", dtypes="float64")
    (result,) = report.results
    assert result.verdict == "agree"
    assert result.grads == {"theta0": -20.0, "theta1": -79.91666666666666}
    multi = gradcmp.compare((np.c_[x, x**2], y), params=["theta1=1,0.5"], backends=["native"])
    assert list(multi.results[0].grads) == ["theta0", "theta1[0]", "theta1[1]"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("nope", "no such file"),
        (([1.0, 2.0], [1.0]), "X has shape (2, 1) and y has shape (1,)"),
        (([1.0, np.nan], [1.0, 2.0]), "column 'x' row 2 is nan: not finite"),
        (42, "data must be a path or an (X, y) pair"),
    ],
)
def test_compare_bad_data(data, fragment):
    with pytest.raises(gradcmp.errors.GradcmpError) as info:
        gradcmp.compare(data, backends=["native"])
    assert fragment in str(info.value)


def test_compare_bad_backend_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown backend"):
        gradcmp.compare((np.ones(3), np.ones(3)), backends=["nope"])


def test_assert_gradients_agree_passes_on_the_seed():
    report = assert_gradients_agree(gradcmp.loading.data.bundled_path(), backends=["native"])
    assert report.verdict == "agree"


def test_assert_gradients_agree_message_names_the_offending_rows(buggy_model):
    with pytest.raises(AssertionError) as info:
        assert_gradients_agree(
            gradcmp.loading.data.bundled_path(),
            model=buggy_model,
            backends=["native", "torch-grad"],
        )
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0].startswith("gradients do not agree (verdict disagree) for model buggy")
    assert any(line.startswith("  torch-grad float64: disagree: ") for line in lines)
    assert any(
        line.startswith("    loss = 455.1666666666667, exact 227.58333333333334") for line in lines
    )
    assert "native" not in message  # native's hand-derived gradient is right: not listed
    assert len(lines) < 20


def test_a_failing_assert_gradients_agree_shows_its_message_not_its_source(tmp_path):
    """pytest hides the helper's own frame (``__tracebackhide__``): the user sees their test
    line and the message — here a port whose sides differ, though each row agrees with its
    own side's graph."""
    loss = tmp_path / "port_half.py"
    loss.write_text(
        'PARAMS = {"w": [0.5]}\n\n\n'
        "def loss_torch(params, X, y):\n"
        '    r = X @ params["w"] - y\n'
        "    return (r * r).mean() / 2\n\n\n"
        "def loss_jax(params, X, y):\n"
        '    r = X @ params["w"] - y\n'
        "    return (r * r).mean()  # the ½ lost in the port\n"
    )
    test = tmp_path / "test_user.py"
    test.write_text(
        "import gradcmp\n"
        "from gradcmp.testing import assert_gradients_agree\n\n\n"
        "def test_port():\n"
        f"    assert_gradients_agree(gradcmp.loading.data.bundled_path(), loss={str(loss)!r},\n"
        "                           backends=['jax-grad'], dtypes='float64')\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "report = compare(*args, **kwargs)" not in done.stdout  # the helper's source
    assert "port (loss_torch vs loss_jax): different" in done.stdout


def test_the_message_shows_the_ten_worst_elements_of_a_result_and_counts_the_rest(tmp_path):
    """25 parameters, w[i]'s hand-derived gradient off by i/100: w[0] agrees, 24 do not; the
    message shows the 10 worst (largest ratio first), then how many more the JSON report has."""
    loss = tmp_path / "many.py"
    loss.write_text(
        'PARAMS = {"w": [0.1] * 25}\n\n\n'
        "def loss(params, X, y, xp):\n"
        '    return xp.sum(params["w"] * params["w"]) + xp.mean(X[:, 0]) * 0\n\n\n'
        "def grad_native(params, X, y):\n"
        '    return {"w": [2 * w + i / 100 for i, w in enumerate(params["w"])]}\n'
    )
    with pytest.raises(AssertionError) as info:
        assert_gradients_agree(
            gradcmp.loading.data.bundled_path(), loss=loss, backends="native", dtypes="float64"
        )
    lines = str(info.value).splitlines()
    assert lines[1].startswith("  native float64 (grad_native): disagree: w[24] is off by ")
    shown = [line.split(" = ")[0].strip() for line in lines if line.startswith("    w[")]
    assert shown == [f"w[{i}]" for i in range(24, 14, -1)]
    assert lines[-2] == "    … and 14 more (the JSON report has them all)"
    assert len(lines) == 14  # the headline, the result, 10 elements, the count, the verdict


def test_a_skipped_backend_is_not_named_among_the_failures(buggy_model):
    """finite-diff does not compute in float32: skipped, which fails nothing, so the message of
    a run that fails on a disagreement does not list it (the verdict line counts it)."""
    with pytest.raises(AssertionError) as info:
        assert_gradients_agree(
            gradcmp.loading.data.bundled_path(), model=buggy_model, backends="native,finite-diff"
        )
    message = str(info.value)
    assert "  finite-diff float64: disagree: " in message
    assert "finite-diff float32" not in message and ": skipped: " not in message
    assert message.splitlines()[-1] == (
        "verdict: disagree (2 agree, 1 disagree, 1 skipped), exit code 1"
    )


def test_a_check_that_checks_nothing_passes_with_a_warning_saying_why():
    """Every backend × dtype skipped: the run exits 0 (inconclusive), so the check passes, as
    the CLI does; but it warns (``-W error`` fails it), with the skips' notes. Under strict
    the run fails, so the check fails, with the same notes."""
    data = (np.arange(1.0, 5.0), np.array([2.0, 4.0, 6.5, 8.0]))
    with pytest.warns(GradcmpWarning) as caught:
        report = assert_gradients_agree(data, backends="finite-diff", dtypes="float32")
    assert (report.verdict, report.exit_code) == ("inconclusive", 0)
    (warning,) = caught
    assert str(warning.message).splitlines() == [
        "gradcmp checked nothing for model linear on <arrays>: no backend produced a result, "
        "so the check passed without comparing a gradient:",
        "  finite-diff float32: skipped: finite-diff does not compute in float32",
    ]
    assert warning.filename == __file__  # the caller's line, not the helper's
    assert issubclass(GradcmpWarning, UserWarning)

    with pytest.raises(AssertionError) as info:
        assert_gradients_agree(data, backends="finite-diff", dtypes="float32", strict=True)
    assert str(info.value).splitlines()[1:] == [
        "  finite-diff float32: skipped: finite-diff does not compute in float32",
        "verdict: inconclusive (no backend produced a result: 1 skipped), exit code 4",
    ]
