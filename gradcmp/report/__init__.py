"""Renderers of a Report: ``table`` (rich, for people), ``plain`` (ASCII, stable for diffs),
``json`` (the contract for programs), ``junit`` (CI test results), ``markdown`` (CI summaries),
``github`` (GitHub Actions annotations, and the Markdown as the job's summary)."""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report

FORMATS = ("table", "plain", "json", "junit", "markdown", "github")
# File names written by --report-dir, one per format (``table`` is ``plain`` in a file).
REPORT_FILES = {
    "plain": "gradcmp.txt",
    "json": "gradcmp.json",
    "junit": "gradcmp-junit.xml",
    "markdown": "gradcmp.md",
}


def render(
    report: Report, fmt: str, json_detail: str = "full", timings: bool = False, detail: bool = False
) -> str:
    """The report as text; ``table`` without colour (for files)."""
    if fmt in ("table", "plain"):
        from .table import console_for
        from .table import render as render_table

        buffer = io.StringIO()
        render_table(
            report,
            console_for(buffer, colour=False),
            plain=fmt == "plain",
            timings=timings,
            detail=detail,
        )
        return buffer.getvalue()
    if fmt == "json":
        from .json import render as render_json

        return render_json(report, json_detail)
    if fmt == "junit":
        from .junit import render as render_junit

        return render_junit(report)
    if fmt == "markdown":
        from .markdown import render as render_markdown

        return render_markdown(report)
    if fmt == "github":
        from .github import render as render_github

        return render_github(report)
    raise ValueError(f"unknown format {fmt!r}")


def show(
    report: Report,
    fmt: str,
    stream: IO[str],
    json_detail: str = "full",
    timings: bool = False,
    detail: bool = False,
) -> None:
    """Write the report to a terminal or pipe: ``table`` in colour where the stream is a TTY."""
    if fmt == "table":
        from .table import console_for
        from .table import render as render_table

        render_table(report, console_for(stream), timings=timings, detail=detail)
    elif fmt == "github":
        from .github import write_step_summary

        stream.write(render(report, fmt))
        write_step_summary(report)
    else:
        stream.write(render(report, fmt, json_detail, timings))
