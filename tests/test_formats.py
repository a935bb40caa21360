"""Report formats: JUnit parses as XML, Markdown is a table, plain is stable, --report-dir."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET

from click.testing import CliRunner

from gradcmp.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_junit_one_testcase_per_backend_and_dtype():
    result = invoke("run", "-b", "native", "--format", "junit")
    assert result.exit_code == 0
    suite = ET.fromstring(result.output.encode())
    assert suite.tag == "testsuite"
    assert suite.get("tests") == "2" and suite.get("failures") == "0"
    names = [case.get("name") for case in suite.iter("testcase")]
    assert names == ["native[float32]", "native[float64]"]
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["verdict"] == "agree"


def test_junit_failure_names_output_error_and_bound(buggy_model):
    result = invoke("run", "--model", buggy_model, "-b", "torch-grad", "--format", "junit")
    assert result.exit_code == 1
    suite = ET.fromstring(result.output.encode())
    assert suite.get("failures") == "2"
    failure = next(suite.iter("failure"))
    assert failure.get("type") == "Disagree"
    assert "rounding bound" in failure.get("message")
    assert "loss: value" in failure.text and "bound" in failure.text and "ratio" in failure.text


def test_junit_errors_and_skips_for_backends_that_did_not_run(tmp_path):
    out = tmp_path / "r.xml"
    invoke("run", "-b", "native", "--dtype", "float64", "--format", "junit", "-o", str(out))
    suite = ET.parse(out).getroot()
    assert suite.get("errors") == "0" and suite.get("skipped") == "0"


def test_markdown_table():
    result = invoke("run", "-b", "native", "--format", "markdown")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "### gradcmp: ✅ agree"
    assert "| backend | dtype | verdict | loss | theta0 | theta1 |" in lines
    assert any(
        line.startswith("| native | float64 | ✅ agree | `227.58333333333331`") for line in lines
    )


def test_plain_is_ascii_without_colour_or_timings_and_stable():
    first = invoke("run", "--format", "plain").output
    second = invoke("run", "--format", "plain").output
    assert first == second
    assert "\x1b[" not in first and " ms" not in first
    assert "| torch-grad     | float32 | agree" in first
    assert "-20.500001907348633" in first


def test_report_dir_writes_every_format_and_table_goes_to_stdout(tmp_path):
    result = invoke("run", "-b", "native", "--report-dir", str(tmp_path / "reports"))
    assert result.exit_code == 0 and "verdict: agree" in result.output
    files = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert files == ["gradcmp-junit.xml", "gradcmp.json", "gradcmp.md", "gradcmp.txt"]
    assert json.loads((tmp_path / "reports" / "gradcmp.json").read_text())["verdict"] == "agree"
    ET.parse(tmp_path / "reports" / "gradcmp-junit.xml")


def test_json_carries_verdicts_bounds_and_environment():
    report = json.loads(invoke("run", "--format", "json").output)
    assert report["verdict"] == "agree"
    assert {r["verdict"] for r in report["results"]} == {"agree"}
    env = report["environment"]
    for key in ("python", "numpy", "torch", "jax", "cpu", "device"):
        assert key in env
    assert env["jax_x64_default"] is False
    assert env["torch_default_dtype"] == "float32" and env["torch_threads"] >= 1
    loss = report["results"][0]["errors"]["loss"]
    assert 0 <= loss["ratio"] <= 1 and loss["bound"] > 0


def test_report_files_get_the_usual_mode_not_the_temporary_files(tmp_path):
    """Written through a temporary file (mkstemp makes it 0600) and renamed: the report
    itself has the mode a plain open() gives, 0666 less the umask."""
    old = os.umask(0o022)
    try:
        result = invoke("run", "-b", "native", "--format", "json", "-o", str(tmp_path / "r.json"))
    finally:
        os.umask(old)
    assert result.exit_code == 0
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


def test_a_ratio_beyond_the_bound_never_prints_as_one_or_less():
    from gradcmp.report.lines import ratio_text

    assert ratio_text(1.0211) == "1.02"  # {:.2g} would print "1": within τ, it reads
    assert ratio_text(1.0000001) == "1.0000001"
    assert ratio_text(0.99999) == "1"  # at most 1 is agree: "1" is honest there
    assert ratio_text(0.087) == "0.087" and ratio_text(3.5e5) == "3.5e+05"
    assert ratio_text(float("inf")) == "inf"


def test_markdown_groups_a_large_model_by_parameter_tensor():
    """A 64-64 MLP has 4,417 gradient elements: one column each would be megabytes (GitHub
    refuses a job summary over 1 MiB); one per tensor, its worst element, is a few KB."""
    result = invoke(
        "run", "--no-workers", "--model", "mlp", "--hidden", "64,64", "-b", "torch-grad",
        "--dtype", "float64", "--format", "markdown",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(result.output) < 20_000
    header = next(line for line in result.output.splitlines() if line.startswith("| backend"))
    assert "W1 [1, 64]" in header and "W2 [64, 64]" in header
    assert "worst of 4096: W2[" in result.output


def test_report_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = invoke("run", "-b", "native", "--report-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert "cannot create the report directory" in result.stderr
