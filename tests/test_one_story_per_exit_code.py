"""One story in every format (issue 12): for each exit code, one run renders every format and
they all say the same thing — the verdict word and the counts of the ``verdict:`` line (failed,
missing and skipped backends included), the exit code, JSON's ``verdict``/``counts`` and its
results' statuses, JUnit's totals and messages, Markdown's heading and rows, GitHub's last
line and annotations, and ``assert_gradients_agree``'s AssertionError — with the same names (a
port's side included: ``jax-grad float64 (loss_jax)``). Usage errors (2) and Ctrl-C (130) print
one line on stderr, nothing on stdout, and write no report file in any format.

Each run is in-process (``--no-workers``) and writes every format at once (``--format github``
on stdout, ``--report-dir`` for plain, JSON, JUnit and Markdown). The pytest helper is held to
the very Report the CLI rendered (``compare`` returns it) rather than recomputing it.
"""

from __future__ import annotations

import contextlib
import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

import gradcmp
import gradcmp.api
import gradcmp.testing
from gradcmp import backends as backends_module
from gradcmp.cli import cli
from gradcmp.errors import InputError
from gradcmp.report import FORMATS
from gradcmp.report.lines import verdict_lines
from gradcmp.testing import GradcmpWarning, assert_gradients_agree

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "port_linear.py"
VERDICT_LINE = re.compile(r"^verdict: (agree|disagree|inconclusive) \((.*)\)$")
NOTHING_RAN = "no backend produced a result"


class Broken:
    """A backend named with -b that raises: failed, exit 3."""

    name = "broken"
    description = "raises"
    requires: tuple[str, ...] = ()
    dtypes = ("float64", "float32")

    def setup(self):
        pass

    def compute(self, problem, dtype):
        raise ZeroDivisionError("planted")


class Missing(Broken):
    """A backend named with -b whose framework is not installed: missing, exit 3."""

    name = "missing"
    requires = ("gradcmp_no_such_framework",)


class Interrupts(Broken):
    """Ctrl-C while a backend runs."""

    name = "interrupts"

    def compute(self, problem, dtype):
        raise KeyboardInterrupt


@pytest.fixture(autouse=True)
def planted(monkeypatch):
    # Into the one registry every module shares (the runner, execute.py, the reference).
    for backend in (Broken(), Missing(), Interrupts()):
        monkeypatch.setitem(backends_module.BACKENDS, backend.name, backend)


@dataclass
class Story:
    """One run, every format."""

    exit_code: int
    strict: bool
    report: object  # the Report the CLI rendered
    github: str
    stderr: str
    plain: str
    document: dict
    junit: ET.Element
    markdown: str
    step_summary: str


def run_every_format(monkeypatch, tmp_path, *args, strict=False) -> Story:
    rendered = []
    write_outputs = gradcmp.api.write_outputs

    def keep(report, *rest, **options):
        rendered.append(report)
        return write_outputs(report, *rest, **options)

    monkeypatch.setattr(gradcmp.api, "write_outputs", keep)
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    reports = tmp_path / "reports"
    command = ["run", *args, "--no-workers", "--format", "github", "--report-dir", str(reports)]
    result = CliRunner().invoke(cli, command + (["--strict"] if strict else []))
    assert rendered, result.stderr
    return Story(
        exit_code=result.exit_code,
        strict=strict,
        report=rendered[0],
        github=result.stdout,
        stderr=result.stderr,
        plain=(reports / "gradcmp.txt").read_text(),
        document=json.loads((reports / "gradcmp.json").read_text()),
        junit=ET.parse(reports / "gradcmp-junit.xml").getroot(),
        markdown=(reports / "gradcmp.md").read_text(),
        step_summary=summary.read_text(),
    )


def parse_verdict_line(line: str) -> tuple[str, dict[str, int], str | None]:
    """``verdict: agree (2 agree, 1 failed; port same)`` → ("agree", counts, "same")."""
    match = VERDICT_LINE.match(line)
    assert match, line
    inner, port = match[2], None
    if "; port " in inner:
        inner, port = inner.split("; port ")
    if inner.startswith(NOTHING_RAN):
        inner = inner[len(NOTHING_RAN) :].lstrip(": ")
    counts = {}
    for item in filter(None, inner.split(", ")):
        n, outcome = item.split(" ", 1)
        counts[outcome] = int(n)
    return match[1], counts, port


def check_one_story(story: Story, expected_line: str) -> None:
    """Every format against the verdict line, and against each other."""
    verdict, *details = verdict_lines(story.report)
    assert verdict == expected_line
    word, counts, port = parse_verdict_line(verdict)
    code = story.exit_code
    assert story.stderr == ""

    # plain (the table in a file) ends its report on the same verdict line
    assert verdict in story.plain.splitlines()

    # JSON: the verdict, the exit code, the counts, and every result's status behind them
    document = story.document
    assert (document["verdict"], document["exit_code"]) == (word, code)
    assert document["verdict_line"] == verdict
    assert {k: n for k, n in document["counts"].items() if n} == counts
    results = document["results"]
    ok = [r for r in results if r["status"] == "ok"]
    for outcome in ("agree", "inconclusive", "disagree"):
        assert counts.get(outcome, 0) == sum(r["verdict"] == outcome for r in ok)
    assert counts.get("failed", 0) == sum(r["status"] == "failed" for r in results)
    skipped = [r for r in results if r["status"] == "skipped"]
    assert counts.get("missing", 0) + counts.get("skipped", 0) == len(skipped)
    assert counts.get("missing", 0) == sum(r["missing"] for r in skipped)
    assert sum(counts.values()) == len(results)
    assert Counter(r["outcome"] for r in results) == counts
    for r in results:
        if r["status"] == "skipped":
            assert r["outcome"] == ("missing" if r["missing"] else "skipped")
        else:
            assert r["outcome"] == (r["verdict"] if r["status"] == "ok" else r["status"])
    assert (document.get("port") or {}).get("verdict") == port
    if not ok:
        assert word == "inconclusive" and NOTHING_RAN in verdict

    # JUnit: the totals are the counts; it fails (a failure or an error) exactly when the run does
    suite = story.junit
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert (properties["verdict"], properties["summary"]) == (word, verdict)
    assert properties["exit_code"] == str(code)
    port_fails = port in ("different", "convention")
    nothing_ran_strictly = story.strict and not ok
    assert int(suite.get("errors")) == counts.get("failed", 0) + counts.get("missing", 0)
    assert int(suite.get("skipped")) == counts.get("skipped", 0)
    assert int(suite.get("failures")) == (
        counts.get("disagree", 0)
        + (counts.get("inconclusive", 0) if story.strict else 0)
        + port_fails
        + nothing_ran_strictly
    )
    assert int(suite.get("tests")) == len(results) + (port is not None) + nothing_ran_strictly
    assert (int(suite.get("failures")) + int(suite.get("errors")) > 0) == (code != 0)
    cases = [c for c in suite.iter("testcase") if c.get("name").split("[")[0] != "port"]
    for r, case in zip(results, cases):
        side = f" ({r['side']})" if r["side"] else ""
        assert case.get("name") == f"{r['backend']}[{r['dtype']}]{side}"
    for element in [*suite.iter("failure"), *suite.iter("error"), *suite.iter("skipped")]:
        message = element.get("message")
        # each result's message is its line of the verdict lines (the port's is its note)
        assert f"  {message}" in details or message in (
            verdict,
            document.get("port", {}).get("note"),
        )

    # Markdown: the heading's verdict (❌ whenever the run fails), then the verdict line
    lines = story.markdown.splitlines()
    mark = "❌" if code != 0 else {"agree": "✅", "inconclusive": "⚠️"}[word]
    assert lines[0] == f"### gradcmp: {mark} {word}"
    assert lines[2] == f"**{verdict}** · exit {code}"
    for r in results:
        side = f" ({r['side']})" if r["side"] else ""
        row = f"| {r['backend']}{side} | {r['dtype']} | "
        assert any(line.startswith(row) for line in lines), row
    for detail in details:
        assert f"- {detail.strip()}" in lines
    assert story.step_summary == story.markdown + "\n"  # GitHub's job summary: the same

    # GitHub: the verdict line last, after the same detail lines; an ::error iff the run fails
    github = story.github.splitlines()
    assert github[-1] == verdict
    assert github[-1 - len(details) : -1] == details
    assert any(line.startswith("::error ") for line in github) == (code != 0)
    for r in results:
        if r["outcome"] in ("disagree", "inconclusive", "failed", "missing"):  # findings
            side = f" ({r['side']})" if r["side"] else ""
            assert any(
                f"title=gradcmp {r['backend']} {r['dtype']}{side}" in line for line in github
            ), r

    # the pytest helper, on the same report: it raises exactly when the run fails, and says so
    # in the same words; a pass that checked nothing warns, as the GitHub annotations do
    def same_report(*args, **kwargs):
        return story.report

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gradcmp.testing, "compare", same_report)
        if code == 0:
            warns = pytest.warns(GradcmpWarning, match=r"^gradcmp checked nothing ")
            with warns if not ok else contextlib.nullcontext():
                assert assert_gradients_agree(strict=story.strict) is story.report
            return
        with pytest.raises(AssertionError) as info:
            assert_gradients_agree(strict=story.strict)
    message = str(info.value).splitlines()
    assert message[-1] == f"{verdict}, exit code {code}"
    assert (word == "disagree") == message[0].startswith("gradients do not agree")
    named = [line for line in message[1:-1] if not line.startswith("    ")]
    for line in named:
        assert line in details or line.startswith("  port (")
    for detail in details:
        if ": disagree: " in detail or ": failed: " in detail or ": missing: " in detail:
            assert detail in named  # every result that fails the run is in the message
        if story.strict and ": inconclusive: " in detail:
            assert detail in named


def test_exit_0_agree_is_agree_with_its_counts_in_every_format(monkeypatch, tmp_path):
    story = run_every_format(monkeypatch, tmp_path, "-b", "native,torch-grad")
    assert story.exit_code == 0
    check_one_story(story, "verdict: agree (4 agree)")
    assert not [line for line in story.github.splitlines() if line.startswith("::")]


def _port_with_two_bugs(tmp_path) -> Path:
    """examples/port_linear.py with the ½ dropped in loss_jax (the port differs) and
    grad_native's theta1 doubled (the native row disagrees)."""
    text = EXAMPLE.read_text()
    for old, new in (
        (
            "    return jnp.mean((prediction - y) ** 2) / 2",
            "    return jnp.mean((prediction - y) ** 2)",
        ),
        ('"theta1": g1 / n}', '"theta1": 2 * g1 / n}'),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "port.py"
    path.write_text(text)
    return path


def test_exit_1_a_port_names_each_side_in_every_format(monkeypatch, tmp_path):
    pytest.importorskip("jax")
    path = _port_with_two_bugs(tmp_path)
    story = run_every_format(
        monkeypatch,
        tmp_path,
        "--loss",
        str(path),
        "-b",
        "native,torch-grad,jax-grad",
        "--dtype",
        "float64",
    )
    assert story.exit_code == 1
    check_one_story(story, "verdict: disagree (2 agree, 1 disagree; port different)")
    names = {c.get("name") for c in story.junit.iter("testcase")}
    assert {
        "native[float64] (grad_native)",
        "torch-grad[float64] (loss_torch)",
        "jax-grad[float64] (loss_jax)",
    } <= names
    (failure,) = [
        c.find("failure")
        for c in story.junit.iter("testcase")
        if c.get("name") == "native[float64] (grad_native)"
    ]
    assert failure.get("message").startswith("native float64 (grad_native): disagree: theta1")
    assert "| jax-grad (loss_jax) | float64 | ✅ agree |" in story.markdown
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(gradcmp.testing, "compare", lambda *a, **k: story.report)
        with pytest.raises(AssertionError) as info:
            assert_gradients_agree()
    message = str(info.value)
    assert "  native float64 (grad_native): disagree: theta1 is off" in message
    assert "  port (loss_torch vs loss_jax vs loss): different: loss_jax computes" in message


def test_exit_3_failed_and_missing_backends_are_counted_in_every_format(monkeypatch, tmp_path):
    story = run_every_format(monkeypatch, tmp_path, "-b", "native,broken,missing")
    assert story.exit_code == 3
    # the verdict word is the agreeing rows'; the counts say why the run fails anyway
    check_one_story(story, "verdict: agree (2 agree, 2 failed, 2 missing)")
    assert [r["status"] for r in story.document["results"]][2:] == ["failed"] * 2 + ["skipped"] * 2
    kinds = [c[0].get("type") for c in story.junit.iter("testcase") if len(c)]
    assert kinds == ["BackendFailed"] * 2 + ["BackendMissing"] * 2


def test_exit_4_inconclusive_under_strict_fails_every_format(monkeypatch, tmp_path):
    # bfloat16 on 6 rows: τ is 6 % of the loss, beyond the 1 % the rule can resolve
    story = run_every_format(
        monkeypatch,
        tmp_path,
        "-b",
        "native,torch-grad",
        "--dtype",
        "bfloat16,float64",
        strict=True,
    )
    assert story.exit_code == 4
    check_one_story(story, "verdict: inconclusive (2 agree, 2 inconclusive)")
    assert [f.get("type") for f in story.junit.iter("failure")] == ["Inconclusive"] * 2


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 4)], ids=["warns", "strict"])
def test_a_run_where_nothing_ran_is_inconclusive_with_its_skips_never_agree(
    monkeypatch, tmp_path, strict, code
):
    data = tmp_path / "huge.csv"
    data.write_text("x,y\n1,2\n1e39,3\n")  # float32 cannot hold 1e39: its rows are skipped
    story = run_every_format(
        monkeypatch,
        tmp_path,
        "--data",
        str(data),
        "-b",
        "native",
        "--dtype",
        "float32",
        strict=strict,
    )
    assert story.exit_code == code
    check_one_story(story, f"verdict: inconclusive ({NOTHING_RAN}: 1 skipped)")
    # nothing was checked: never a silent log (an error where --strict fails the run on it)
    annotations = [line for line in story.github.splitlines() if line.startswith("::")]
    kind = "error" if strict else "warning"
    assert annotations == [
        f"::{kind} title=gradcmp::verdict: inconclusive ({NOTHING_RAN}: 1 skipped)"
    ]
    assert "agree" not in story.markdown.splitlines()[0]


def _no_report_anywhere(tmp_path, monkeypatch, *args: str, fmt: str):
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    reports, output = tmp_path / "reports", tmp_path / f"out.{fmt}"
    result = CliRunner().invoke(
        cli,
        [
            "run",
            *args,
            "--no-workers",
            "--format",
            fmt,
            "-o",
            str(output),
            "--report-dir",
            str(reports),
        ],
    )
    written = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".csv"]
    assert result.stdout == "" and written == []
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("gradcmp: error: ")
    return result


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_2_bad_input_is_one_line_and_no_report_in_any_format(monkeypatch, tmp_path, fmt):
    data = tmp_path / "bad.csv"
    data.write_text("x,y\n1,2\n3,four\n")
    result = _no_report_anywhere(
        tmp_path, monkeypatch, "--data", str(data), "-b", "native", fmt=fmt
    )
    assert result.exit_code == 2
    where = result.stderr.removeprefix("gradcmp: error: ").rstrip("\n")
    assert where.startswith(f"{data}:3")
    # the pytest helper: the same sentence, as the error it is (not an AssertionError)
    with pytest.raises(InputError) as info:
        assert_gradients_agree(str(data), backends="native")
    assert str(info.value) == where


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_130_ctrl_c_is_one_line_and_no_report_in_any_format(monkeypatch, tmp_path, fmt):
    result = _no_report_anywhere(tmp_path, monkeypatch, "-b", "native,interrupts", fmt=fmt)
    assert result.exit_code == 130
    assert result.stderr == "gradcmp: error: interrupted\n"


def test_ctrl_c_in_the_pytest_helper_is_an_interrupt_not_a_disagreement():
    with pytest.raises(KeyboardInterrupt):
        assert_gradients_agree(gradcmp.loading.data.bundled_path(), backends="native,interrupts")
