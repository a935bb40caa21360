"""``--format github``: GitHub Actions annotations at the lines findings point to, the verdict
line last, and the Markdown report appended to ``$GITHUB_STEP_SUMMARY`` in a GitHub job."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gradcmp.cli import cli
from gradcmp.report.github import _command

PORTS = Path(__file__).parent / "ports"


def _run(monkeypatch, tmp_path, *args):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.chdir(PORTS.parent.parent)  # the workspace: annotations name files from here
    result = CliRunner().invoke(cli, ["run", *args, "--format", "github"])
    return result, summary


def test_a_failing_port_is_annotated_at_each_sides_line(monkeypatch, tmp_path):
    result, summary = _run(
        monkeypatch,
        tmp_path,
        "--loss", str(PORTS / "gelu_exact_trap.py"),
        "--data", str(PORTS / "data" / "features4.csv"),
        "-b", "torch-grad,jax-grad", "--dtype", "float64",
    )
    assert result.exit_code == 1
    lines = result.output.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    # The JAX side's line is the one marked TRAP in the file; the torch side's is its twin.
    assert any("file=tests/ports/gelu_exact_trap.py,line=27," in e for e in errors), errors
    assert any("file=tests/ports/gelu_exact_trap.py,line=17," in e for e in errors), errors
    trap = (PORTS / "gelu_exact_trap.py").read_text().splitlines()[26]
    assert "TRAP" in trap
    assert lines[-1] == "verdict: disagree (2 agree; port different)"
    assert summary.read_text().startswith("### gradcmp: ")  # the job's summary got the Markdown


def test_an_agreeing_run_has_no_annotation_and_ends_on_its_verdict(monkeypatch, tmp_path):
    result, summary = _run(monkeypatch, tmp_path, "-b", "native", "--dtype", "float64")
    assert result.exit_code == 0
    assert not [line for line in result.output.splitlines() if line.startswith("::")]
    assert result.output.splitlines()[-1] == "verdict: agree (1 agree)"
    assert "agree" in summary.read_text()


def test_a_failure_inside_a_loss_file_is_annotated_at_its_line(monkeypatch, tmp_path):
    loss = tmp_path / "broken_loss.py"
    loss.write_text(
        'PARAMS = {"w": [0.0]}\n\n\ndef loss(params, X, y, xp):\n'
        "    return xp.mean((X @ params['w'] - y) ** 2)\n\n\n"
        "def loss_numpy(params, X, y):\n"
        "    raise RuntimeError('not written yet')\n"
    )
    result, _ = _run(monkeypatch, tmp_path, "--loss", str(loss), "-b", "finite-diff",
                     "--dtype", "float64")
    assert result.exit_code == 3, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("::error ")]
    assert errors and all(f"file={loss},line=9," in e for e in errors), result.output
    assert "RuntimeError: not written yet" in errors[0]


def test_messages_and_properties_are_escaped_as_github_reads_them():
    line = _command("error", "a: b, c", "50% off\nnext", "x.py", "3")
    assert line == "::error file=x.py,line=3,title=a%3A b%2C c::50%25 off%0Anext"


def test_a_rank_failure_is_annotated_at_the_line_its_note_names():
    from gradcmp.report.github import _WHERE

    where = _WHERE.search("rank 1 failed: step.py:6: ZeroDivisionError: division by zero")
    assert where is not None
    assert (where["file"], where["line"]) == ("step.py", "6")
    assert where["rest"] == "ZeroDivisionError: division by zero"
    assert _WHERE.search("no location in this note: 3 ranks") is None


def test_an_annotation_without_a_line_names_the_file_alone():
    assert _command("warning", "t", "m", "loss.py") == "::warning file=loss.py,title=t::m"
