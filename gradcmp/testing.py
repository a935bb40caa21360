"""pytest helper: ``assert_gradients_agree`` fails a test with the offending rows, not a dump.

The message tells the story every report format tells: each offending result named as the
verdict lines name it (its side included: ``jax-grad float64 (loss_jax)``), with the same
sentence, and the verdict line itself (``verdict: agree (2 agree, 1 failed)``) last."""

from __future__ import annotations

from .agreement import AGREE, DISAGREE, INCONCLUSIVE, to_float
from .api import compare
from .runner import OK, Report

__all__ = ["assert_gradients_agree", "failure_message"]


def assert_gradients_agree(*args, **kwargs) -> Report:
    """Run :func:`gradcmp.compare` with the same arguments; raise ``AssertionError`` unless every
    result agrees (inconclusive passes unless ``strict=True``), every named backend ran, and a
    port's sides compute the same function: exactly when ``gradcmp run`` would exit non-zero.

    Returns the Report, for further checks.
    """
    __tracebackhide__ = True  # pytest shows the message, not this helper's source
    report = compare(*args, **kwargs)
    message = failure_message(report, kwargs.get("strict", False))
    if message is not None:
        raise AssertionError(message)
    return report


def failure_message(report: Report, strict: bool = False) -> str | None:
    """The message a check of ``report`` fails with, or None when it passes: every result
    agrees (inconclusive passes unless ``strict``), every named backend ran, a port's sides
    compute the same function, the run's exit code is 0. The pytest plugin's fixture checks
    its Reports with this too."""
    bad = [
        r
        for r in report.results
        if (r.status == OK and r.verdict != AGREE and (strict or r.verdict != INCONCLUSIVE))
        or (r.status != OK and report.exit_code != 0)
    ]
    port = report.port
    if bad or (port is not None and port.fails) or report.exit_code != 0:
        return _message(report, bad)
    return None


def _message(report: Report, bad) -> str:
    from .report.lines import result_line, verdict_line

    problem = report.problem
    what = "gradients do not agree" if report.verdict == DISAGREE else "gradient check failed"
    lines = [
        f"{what} (verdict {report.verdict}) for model {problem.model.name} "
        f"on {problem.data.path} ({problem.data.rows} rows):"
    ]
    for r in bad:
        lines.append(f"  {result_line(report, r)}")  # as the verdict lines say it
        if r.status != OK:
            continue
        # What it was held against: its own side's graph where it has one (a port's row).
        judged_by, reference = report.reference.for_side(r.side, r.dtype)
        exact = reference.outputs()
        values = {"loss": r.loss, **r.grads}
        for name, e in r.errors.items():
            if e.verdict != AGREE:
                lines.append(
                    f"    {name} = {values[name]!r}, {judged_by} {to_float(exact[name])!r}: "
                    f"error {e.abs:.3g} (rel {e.rel:.2g}, {e.ulp:.3g} ulp), "
                    f"bound {e.bound:.3g}, ratio {e.ratio:.3g}"
                )
    port = report.port
    if port is not None and port.fails:  # the sides compute different functions
        lines.append(f"  port ({' vs '.join(port.sides)}): {port.verdict}: {port.note}")
    lines.append(f"{verdict_line(report)}, exit code {report.exit_code}")
    return "\n".join(lines)
