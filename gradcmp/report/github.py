"""``--format github``: GitHub Actions workflow commands, so a finding shows where it points.

One annotation per finding — ``::error`` for a result that disagrees or failed and for a port
whose sides differ, ``::warning`` for an inconclusive one — at the file and line it points to
where there is one (a failure inside a loss file: its FILE:LINE; a port's divergence: the line
on each side), then the verdict line, as the log's last line. Where ``$GITHUB_STEP_SUMMARY`` is
set (a GitHub job), the Markdown report is appended to it (``show``).
"""

from __future__ import annotations

import os
import re

from ..runner import FAILED, OK, Report
from .table import port_lines, verdict_lines

# "FILE:LINE: what" at the start of a note (a failure inside the user's loss file).
_WHERE = re.compile(r"^(?P<file>[^:\s][^:]*\.py):(?P<line>\d+): (?P<rest>.*)$")


def render(report: Report) -> str:
    lines = []
    for r in report.results:
        side = f" ({r.side})" if r.side else ""
        title = f"gradcmp {r.backend} {r.dtype}{side}"
        if r.status == FAILED:
            where = _WHERE.match(r.note)
            if where:
                lines.append(
                    _command("error", title, where["rest"], where["file"], where["line"])
                )
            else:
                lines.append(_command("error", title, r.note))
        elif r.status == OK and r.verdict == "disagree":
            lines.append(_command("error", title, r.why, *_loss_file(report)))
        elif r.status == OK and r.verdict == "inconclusive":
            lines.append(_command("warning", title, r.why, *_loss_file(report)))
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
    lines += port_lines(report) + verdict_lines(report)
    return "\n".join(lines) + "\n"


def write_step_summary(report: Report) -> None:
    """Append the Markdown report to the job's summary, where GitHub says where it is."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    from .markdown import render as render_markdown

    with open(path, "a", encoding="utf-8") as f:
        f.write(render_markdown(report) + "\n")


def _loss_file(report: Report) -> tuple[str, str] | tuple[()]:
    source = report.problem.model.source
    return (source, "1") if source != "built-in" else ()


def _command(kind: str, title: str, message: str, file: str = "", line: str = "") -> str:
    """``::error file=F,line=L,title=T::message`` with GitHub's escapes."""
    properties = [f"file={_property(_relative(file))}", f"line={line}"] if file else []
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
