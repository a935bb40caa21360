"""pytest helper: ``assert_gradients_agree`` fails a test with the offending rows, not a dump."""

from __future__ import annotations

from .agreement import AGREE, INCONCLUSIVE, to_float
from .api import compare
from .runner import OK, Report

__all__ = ["assert_gradients_agree"]


def assert_gradients_agree(*args, **kwargs) -> Report:
    """Run :func:`gradcmp.compare` with the same arguments; raise ``AssertionError`` unless every
    result agrees (inconclusive passes unless ``strict=True``), every named backend ran, and a
    port's sides compute the same function.

    Returns the Report, for further checks.
    """
    __tracebackhide__ = True  # pytest shows the message, not this helper's source
    report = compare(*args, **kwargs)
    strict = kwargs.get("strict", False)
    bad = [
        r
        for r in report.results
        if (r.status == OK and r.verdict != AGREE and (strict or r.verdict != INCONCLUSIVE))
        or (r.status != OK and report.exit_code != 0)
    ]
    port = report.port
    if bad or (port is not None and port.fails):
        raise AssertionError(_message(report, bad))
    return report


def _message(report: Report, bad) -> str:
    problem = report.problem
    lines = [
        f"gradients do not agree (verdict {report.verdict}) for model {problem.model.name} "
        f"on {problem.data.path} ({problem.data.rows} rows):"
    ]
    for r in bad:
        side = f" ({r.side})" if r.side else ""  # the side of a port, as in the table
        if r.status != OK:
            lines.append(f"  {r.backend} {r.dtype}{side}: {r.status}: {r.note}")
            continue
        lines.append(f"  {r.backend} {r.dtype}{side}: {r.verdict}: {r.why}")
        exact = report.reference.by_dtype[r.dtype].outputs()
        values = {"loss": r.loss, **r.grads}
        for name, e in r.errors.items():
            if e.verdict != AGREE:
                lines.append(
                    f"    {name} = {values[name]!r}, exact {to_float(exact[name])!r}: "
                    f"error {e.abs:.3g} (rel {e.rel:.2g}, {e.ulp:.3g} ulp), "
                    f"bound {e.bound:.3g}, ratio {e.ratio:.3g}"
                )
    port = report.port
    if port is not None and port.fails:  # the sides compute different functions
        lines.append(f"  port ({' vs '.join(port.sides)}): {port.verdict}: {port.note}")
    return "\n".join(lines)
