"""pytest helper: ``assert_gradients_agree`` fails a test with the offending rows, not a dump."""

from __future__ import annotations

from .agreement import AGREE, INCONCLUSIVE, to_float
from .api import compare
from .runner import OK, Report

__all__ = ["assert_gradients_agree"]


def assert_gradients_agree(*args, **kwargs) -> Report:
    """Run :func:`gradcmp.compare` with the same arguments; raise ``AssertionError`` unless every
    result agrees (inconclusive passes unless ``strict=True``) and every named backend ran.

    Returns the Report, for further checks.
    """
    report = compare(*args, **kwargs)
    strict = kwargs.get("strict", False)
    bad = [
        r
        for r in report.results
        if (r.status == OK and r.verdict != AGREE and (strict or r.verdict != INCONCLUSIVE))
        or (r.status != OK and report.exit_code != 0)
    ]
    if bad:
        raise AssertionError(_message(report, bad))
    return report


def _message(report: Report, bad) -> str:
    problem = report.problem
    lines = [
        f"gradients do not agree (verdict {report.verdict}) for model {problem.model.name} "
        f"on {problem.data.path} ({problem.data.rows} rows):"
    ]
    for r in bad:
        if r.status != OK:
            lines.append(f"  {r.backend} {r.dtype}: {r.status}: {r.note}")
            continue
        lines.append(f"  {r.backend} {r.dtype}: {r.verdict}: {r.why}")
        exact = report.reference.by_dtype[r.dtype].outputs()
        values = {"loss": r.loss, **r.grads}
        for name, e in r.errors.items():
            if e.verdict != AGREE:
                lines.append(
                    f"    {name} = {values[name]!r}, exact {to_float(exact[name])!r}: "
                    f"error {e.abs:.3g} (rel {e.rel:.2g}, {e.ulp:.3g} ulp), "
                    f"bound {e.bound:.3g}, ratio {e.ratio:.3g}"
                )
    return "\n".join(lines)
