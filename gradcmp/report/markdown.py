"""A Markdown summary fit for a CI job summary (GitHub's $GITHUB_STEP_SUMMARY and the like)."""

from __future__ import annotations

from ..agreement import to_float
from ..runner import OK, Report
from .table import (
    baseline_lines,
    error_lines,
    header_lines,
    port_lines,
    reference_rows,
    rounding_lines,
    verdict_lines,
)

MARK = {"agree": "✅", "disagree": "❌", "inconclusive": "⚠️"}


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def render(report: Report) -> str:
    problem, reference = report.problem, report.reference
    outputs = ["loss", *problem.params.elements()]
    lines = [f"### gradcmp: {MARK.get(report.verdict, '')} {report.verdict}", ""]
    lines += [f"- {_escape(line)}" for line in header_lines(report)]
    lines += ["", "| backend | dtype | verdict | " + " | ".join(outputs) + " |"]
    lines.append("|---|---|---|" + "---|" * len(outputs))
    for dtype, values in reference_rows(report):
        cells = [f"`{to_float(v)!r}`" for v in values.outputs().values()]
        lines.append(f"| **{reference.name}** | {dtype} | reference | " + " | ".join(cells) + " |")
    for r in report.results:
        if r.status == OK:
            cells = []
            for k in outputs:
                if k not in r.errors:
                    cells.append("—")
                    continue
                value = r.loss if k == "loss" else r.grads[k]
                first, second = error_lines(r.errors[k])
                cells.append(f"`{value!r}`<br>{first}<br>{second}")
            verdict = f"{MARK[r.verdict]} {r.verdict}"
        else:
            cells, verdict = ["—"] * len(outputs), r.status
        lines.append(f"| {r.backend} | {r.dtype} | {verdict} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"- {_escape(line.strip())}" for line in rounding_lines(report)]
    lines += [f"- {_escape(line.strip())}" for line in baseline_lines(report)]
    lines += [f"- {_escape(line.strip())}" for line in port_lines(report)]
    lines += [f"- {_escape(line.strip())}" for line in verdict_lines(report)]
    return "\n".join(lines) + "\n"
