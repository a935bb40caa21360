"""JUnit XML, which CI systems render as tests: one testcase per backend × dtype.

disagree → <failure> naming the output, its error and its bound; a failed backend, or one
named with -b that is not installed (``missing``) → <error>; a skipped backend → <skipped>;
inconclusive passes with the reason in <system-out> (it is a <failure> under --strict, where it
fails the run). A testcase is named as the verdict line names the result (``jax-grad[float64]
(loss_jax)``) and every message is that result's line of the verdict lines; the totals are the
verdict line's counts, and the suite fails (a failure or an error) exactly when the run exits
non-zero: a run where nothing produced a result under --strict gets one more failing testcase,
``verdict``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from ..judging.agreement import DISAGREE, INCONCLUSIVE
from ..outcomes import FAILED, OK, SKIPPED
from .lines import (
    baseline_lines,
    outcome,
    outcome_counts,
    port_lines,
    ratio_text,
    result_line,
    verdict_line,
)

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report


def _failure_text(result) -> str:
    lines = []
    for name, e in result.errors.items():
        if e.verdict == DISAGREE:
            lines.append(
                f"{name}: value {result.loss if name == 'loss' else result.grads[name]!r}, "
                f"error {e.abs:.6g} (rel {e.rel:.3g}, {e.ulp:.3g} ulp), bound {e.bound:.6g}, "
                f"ratio {ratio_text(e.ratio, 6)}"
            )
    return "\n".join(lines)


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot hold control characters (a data path may have them): show them."""
    return _INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _port_case(suite: ET.Element, report: Report) -> None:
    """One more testcase: whether the port's sides compute the same function."""
    port = report.port
    case = ET.SubElement(
        suite,
        "testcase",
        classname=f"gradcmp.{report.problem.model.name}.port",
        name=f"port[{' vs '.join(port.sides)}]",
        time="0",
    )
    text = "\n".join(port_lines(report))
    if port.fails:
        ET.SubElement(
            case, "failure", message=port.note, type=f"Port{port.verdict.title()}"
        ).text = text
        suite.set("failures", str(int(suite.get("failures")) + 1))
    else:
        ET.SubElement(case, "system-out").text = text
    suite.set("tests", str(int(suite.get("tests")) + 1))


def render(report: Report) -> str:
    problem = report.problem
    counts = outcome_counts(report)
    strict_inconclusive = counts[INCONCLUSIVE] if report.strict else 0
    suite = ET.Element(
        "testsuite",
        name=f"gradcmp.{problem.model.name}",
        tests=str(len(report.results)),
        failures=str(counts[DISAGREE] + strict_inconclusive),
        errors=str(counts[FAILED] + counts["missing"]),
        skipped=str(counts[SKIPPED]),
        time=f"{sum(r.seconds or 0 for r in report.results):.6f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", report.verdict),
        ("summary", verdict_line(report)),
        ("exit_code", str(report.exit_code)),
        ("data", problem.data.path),
        ("rows", str(problem.data.rows)),
        ("reference", report.reference.method),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for r in report.results:
        side = f" ({r.side})" if r.side else ""
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"gradcmp.{problem.model.name}.{r.backend}",
            name=f"{r.backend}[{r.dtype}]{side}",
            time=f"{r.seconds or 0:.6f}",
        )
        line = result_line(report, r)
        ended = outcome(report, r)
        if r.status == FAILED:
            ET.SubElement(case, "error", message=line, type="BackendFailed").text = r.note
        elif ended == "missing":
            ET.SubElement(case, "error", message=line, type="BackendMissing").text = r.note
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", message=line)
        elif r.verdict == DISAGREE:
            failure = ET.SubElement(case, "failure", message=line, type="Disagree")
            failure.text = _failure_text(r)
        elif r.verdict == INCONCLUSIVE:
            if report.strict:
                ET.SubElement(case, "failure", message=line, type="Inconclusive").text = r.why
            else:
                ET.SubElement(case, "system-out").text = line
    if (
        report.strict
        and report.verdict == INCONCLUSIVE
        and not any(r.status == OK for r in report.results)
    ):
        # Nothing ran, and --strict fails the run on that (exit 4): say so as a failure, not
        # as a suite of skips that CI would show as passing.
        case = ET.SubElement(
            suite, "testcase", classname=f"gradcmp.{problem.model.name}", name="verdict", time="0"
        )
        summary = verdict_line(report)
        ET.SubElement(case, "failure", message=summary, type="Inconclusive").text = summary
        suite.set("tests", str(int(suite.get("tests")) + 1))
        suite.set("failures", str(int(suite.get("failures")) + 1))
    if report.port is not None:
        _port_case(suite, report)
    if report.baseline is not None:  # what changed since the baseline: the suite's output
        ET.SubElement(suite, "system-out").text = "\n".join(baseline_lines(report))
    for element in suite.iter():
        element.attrib = {k: _xml_safe(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_safe(element.text)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, "unicode") + "\n"
