"""A Markdown summary fit for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY and the like).

The heading gives the verdict (marked ❌ whenever the run exits non-zero, whatever the verdict
word: a failed backend under an ``agree``), the line under it the verdict line with its counts
and the exit code; rows name the side that ran, as the table does."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..judging.agreement import to_float, worst_output
from ..outcomes import OK
from .lines import (
    baseline_lines,
    columns,
    error_lines,
    header_lines,
    outcome,
    port_lines,
    reference_rows,
    rounding_lines,
    verdict_line,
    verdict_lines,
)

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report

MARK = {"agree": "✅", "disagree": "❌", "inconclusive": "⚠️"}
# A result that did not run: failed, and missing (named with -b, not installed) fail the run.
STATUS_MARK = {"failed": "❌", "missing": "❌", "skipped": "⏭️"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _cell(r, outputs: list[str]) -> str:
    """A result's cell: the output's value and error, or a tensor's worst element."""
    present = [k for k in outputs if k in r.errors]
    if not present:
        return "—"
    k = present[0] if len(outputs) == 1 else worst_output(r.errors, present)
    value = r.loss if k == "loss" else r.grads[k]
    first, second = error_lines(r.errors[k])
    worst = "" if len(outputs) == 1 else f"worst of {len(present)}: {k}<br>"
    return f"{worst}`{value!r}`<br>{first}<br>{second}"


def render(report: Report) -> str:
    reference = report.reference
    groups = columns(report)  # past 8 gradient elements, one column per parameter tensor
    mark = MARK.get(report.verdict, "") if report.exit_code == 0 else "❌"
    lines = [f"### gradcmp: {mark} {report.verdict}", ""]
    lines += [f"**{_escape(verdict_line(report))}** · exit {report.exit_code}", ""]
    lines += [f"- {_escape(line)}" for line in header_lines(report)]
    lines += ["", "| backend | dtype | verdict | " + " | ".join(map(_escape, groups)) + " |"]
    lines.append("|---|---|---|" + "---|" * len(groups))
    for dtype, values in reference_rows(report):
        exact = values.outputs()
        cells = [
            f"`{to_float(exact[outputs[0]])!r}`"
            if len(outputs) == 1
            else f"{len(outputs)} elements<br>largest \\|value\\| "
            f"`{max(abs(to_float(exact[k])) for k in outputs)!r}`"
            for outputs in groups.values()
        ]
        lines.append(f"| **{reference.name}** | {dtype} | reference | " + " | ".join(cells) + " |")
    for r in report.results:
        if r.status == OK:
            cells = [_cell(r, outputs) for outputs in groups.values()]
            verdict = f"{MARK[r.verdict]} {r.verdict}"
        else:
            ended = outcome(report, r)
            cells, verdict = ["—"] * len(groups), f"{STATUS_MARK[ended]} {ended}"
        backend = f"{r.backend} ({r.side})" if r.side else r.backend
        lines.append(f"| {backend} | {r.dtype} | {verdict} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {_escape(line.strip())}" for line in rounding_lines(report)]
    lines += [f"- {_escape(line.strip())}" for line in baseline_lines(report)]
    lines += [f"- {_escape(line.strip())}" for line in port_lines(report)]
    # The verdict line is under the heading; here what it counts: each result's why or note.
    lines += [f"- {_escape(line.strip())}" for line in verdict_lines(report)[1:]]
    return "\n".join(lines) + "\n"
