"""``--format github``: GitHub Actions workflow commands, so a finding shows where it points.

One annotation per finding — ``::error`` for a result that disagrees, failed or is missing
(named with -b, not installed) and for a port whose sides differ, ``::warning`` for an
inconclusive one (``::error`` under --strict, where it fails the run) — at the file and line it
points to where there is one (a failure inside a loss file: its FILE:LINE; a port's divergence:
the line on each side); a run where every backend was skipped is annotated with its verdict
line. Then the port's and the results' lines, and the verdict line as the log's last line.
Where ``$GITHUB_STEP_SUMMARY`` is set (a GitHub job), the Markdown report is appended to it
(``show``).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from ..outcomes import FAILED, OK
from .lines import (
    baseline_lines,
    outcome,
    port_lines,
    result_name,
    verdict_line,
    verdict_lines,
)

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report

# "FILE:LINE: what" in a note (a failure inside the user's loss file), at its start or after
# a prefix ("rank 1 failed: step.py:6: …"): the annotation goes to that line.
_WHERE = re.compile(r"(?:^|: )(?P<file>[^:\s][^:]*\.py):(?P<line>\d+): (?P<rest>.*)$")


def render(report: Report) -> str:
    lines = []
    inconclusive = "error" if report.strict else "warning"
    for r in report.results:
        title = f"gradcmp {result_name(r)}"
        if r.status == FAILED:
            where = _WHERE.search(r.note)
            if where:
                lines.append(_command("error", title, where["rest"], where["file"], where["line"]))
            else:
                lines.append(_command("error", title, r.note))
        elif outcome(report, r) == "missing":
            lines.append(_command("error", title, f"missing: {r.note}"))
        elif r.status == OK and r.verdict == "disagree":
            lines.append(_command("error", title, r.why, *_loss_file(report)))
        elif r.status == OK and r.verdict == "inconclusive":
            lines.append(_command(inconclusive, title, r.why, *_loss_file(report)))
    port = report.port
    if port is not None and port.fails:
        title = f"gradcmp port ({' vs '.join(port.sides)}): {port.verdict}"
        if port.divergence:
            for d in port.divergence:
                text = f"{d.side} parts from the other side here: {d.op}"
                text += f" ({d.phase}, rel {d.rel:.2g}); {port.note}"
                lines.append(_command("error", title, text, d.file, str(d.line)))
        else:
            lines.append(_command("error", title, port.note, *_loss_file(report)))
    if not lines and not any(r.status == OK for r in report.results):
        # Nothing was checked (every backend skipped): never a silent log. An error where the
        # run fails on it (--strict).
        kind = "error" if report.exit_code != 0 else "warning"
        lines.append(_command(kind, "gradcmp", verdict_line(report)))
    verdict, *details = verdict_lines(report)
    lines += port_lines(report) + baseline_lines(report) + details + [verdict]
    return "\n".join(lines) + "\n"


def write_step_summary(report: Report) -> None:
    """Append the Markdown report to the job's summary, where GitHub says where it is."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from .markdown import render as render_markdown

    with open(path, "a", encoding="utf-8") as f:
        f.write(render_markdown(report) + "\n")


def _loss_file(report: Report) -> tuple[str] | tuple[()]:
    """The loss file, without a line: a verdict on the whole file points at no line of it."""
    source = report.problem.model.source
    return (source,) if source != "built-in" else ()


def _command(kind: str, title: str, message: str, file: str = "", line: str = "") -> str:
    """``::error file=F,line=L,title=T::message`` with GitHub's escapes."""
    properties = [f"file={_property(_relative(file))}"] if file else []
    if file and line:
        properties.append(f"line={line}")
    properties.append(f"title={_property(title)}")
    return f"::{kind} {','.join(properties)}::{_data(message)}"


def _relative(path: str) -> str:
    """GitHub places an annotation by the path from the workspace (the job's working directory):
    a file under it is named from there."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
