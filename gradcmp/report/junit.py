"""JUnit XML, which CI systems render as tests: one testcase per backend × dtype.

disagree → <failure> naming the output, its error and its bound; a failed backend → <error>;
a skipped backend → <skipped>; inconclusive passes with the reason in <system-out> (it is a
<failure> under --strict, where it fails the run).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from ..agreement import DISAGREE, INCONCLUSIVE
from ..runner import FAILED, SKIPPED, Report


def _failure_text(result) -> str:
    lines = []
    for name, e in result.errors.items():
        if e.verdict == DISAGREE:
            lines.append(
                f"{name}: value {result.loss if name == 'loss' else result.grads[name]!r}, "
                f"error {e.abs:.6g} (rel {e.rel:.3g}, {e.ulp:.3g} ulp), bound {e.bound:.6g}, "
                f"ratio {e.ratio:.6g}"
            )
    return "\n".join(lines)


_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    """XML 1.0 cannot hold control characters (a data path may have them): show them."""
    return _INVALID_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _port_case(suite: ET.Element, report: Report) -> None:
    """One more testcase: whether the port's sides compute the same function."""
    from .table import port_lines

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
    suite = ET.Element(
        "testsuite",
        name=f"gradcmp.{problem.model.name}",
        tests=str(len(report.results)),
        failures=str(
            sum(
                r.verdict == DISAGREE or (report.strict and r.verdict == INCONCLUSIVE)
                for r in report.results
            )
        ),
        errors=str(sum(r.status == FAILED for r in report.results)),
        skipped=str(sum(r.status == SKIPPED for r in report.results)),
        time=f"{sum(r.seconds or 0 for r in report.results):.6f}",
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("verdict", report.verdict),
        ("data", problem.data.path),
        ("rows", str(problem.data.rows)),
        ("reference", report.reference.method),
    ):
        ET.SubElement(properties, "property", name=name, value=value)
    for r in report.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"gradcmp.{problem.model.name}.{r.backend}",
            name=f"{r.backend}[{r.dtype}]",
            time=f"{r.seconds or 0:.6f}",
        )
        if r.status == FAILED:
            ET.SubElement(case, "error", message=r.note, type="BackendFailed").text = r.note
        elif r.status == SKIPPED:
            ET.SubElement(case, "skipped", message=r.note)
        elif r.verdict == DISAGREE:
            failure = ET.SubElement(case, "failure", message=r.why, type="Disagree")
            failure.text = _failure_text(r)
        elif r.verdict == INCONCLUSIVE:
            if report.strict:
                ET.SubElement(case, "failure", message=r.why, type="Inconclusive").text = r.why
            else:
                ET.SubElement(case, "system-out").text = f"inconclusive: {r.why}"
    if report.port is not None:
        _port_case(suite, report)
    for element in suite.iter():
        element.attrib = {k: _xml_safe(v) for k, v in element.attrib.items()}
        if element.text:
            element.text = _xml_safe(element.text)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, "unicode") + "\n"
