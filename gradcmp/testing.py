"""pytest helper: ``assert_gradients_agree`` fails a test with the offending rows, not a dump.

The message tells the story every report format tells: each offending result named as the
verdict lines name it (its side included: ``jax-grad float64 (loss_jax)``), with the same
sentence, its worst elements (at most ``SHOWN_ELEMENTS`` each), and the verdict line itself
(``verdict: agree (2 agree, 1 failed)``) last.

A check that checked nothing (every backend × dtype skipped) passes, as ``gradcmp run`` exits 0
on it, but warns with :class:`GradcmpWarning`: ``-W error`` makes it a failure."""

from __future__ import annotations

import math
import warnings

from .api import compare
from .errors import EXIT_INCONCLUSIVE
from .judging.agreement import AGREE, DISAGREE, INCONCLUSIVE, to_float
from .judging.runner import OK, Report

__all__ = ["GradcmpWarning", "assert_gradients_agree", "failure_message"]

# Past this many offending elements of one result, the message shows the worst and a count.
SHOWN_ELEMENTS = 10


class GradcmpWarning(UserWarning):
    """A gradient check passed without checking anything: every backend × dtype was skipped."""


def assert_gradients_agree(*args, **kwargs) -> Report:
    """Run :func:`gradcmp.compare` with the same arguments; raise ``AssertionError`` unless every
    result agrees (inconclusive passes unless ``strict=True``), every named backend ran, and a
    port's sides compute the same function: exactly when ``gradcmp run`` would exit non-zero.
    A pass where no backend produced a result warns (:class:`GradcmpWarning`).

    Returns the Report, for further checks.
    """
    __tracebackhide__ = True  # pytest shows the message, not this helper's source
    report = compare(*args, **kwargs)
    message = failure_message(report, kwargs.get("strict", False))
    if message is not None:
        raise AssertionError(message)
    _warn_if_nothing_checked(report, stacklevel=2)  # at the caller's line
    return report


def failure_message(report: Report, strict: bool = False) -> str | None:
    """The message a check of ``report`` fails with, or None when it passes: every result
    agrees (inconclusive passes unless ``strict``), every named backend ran, a port's sides
    compute the same function, the run's exit code is 0. The pytest plugin's fixture checks
    its Reports with this too."""
    from .report.lines import outcome

    ran = any(r.status == OK for r in report.results)
    bad = [
        r
        for r in report.results
        if (r.status == OK and r.verdict != AGREE and (strict or r.verdict != INCONCLUSIVE))
        # failed, or named and not installed: these fail the run; a plain skip does not
        or outcome(report, r) in ("failed", "missing")
        # nothing ran and that fails the run (strict): the skips are why
        or (not ran and report.exit_code == EXIT_INCONCLUSIVE)
    ]
    port = report.port
    if bad or (port is not None and port.fails) or report.exit_code != 0:
        return _message(report, bad)
    return None


def _nothing_checked(report: Report) -> str | None:
    """Why a report checked nothing (no backend produced a result), or None when one did."""
    from .report.lines import result_line

    if any(r.status == OK for r in report.results):
        return None
    problem = report.problem
    lines = [
        f"gradcmp checked nothing for model {problem.model.name} on {problem.data.path}: "
        "no backend produced a result, so the check passed without comparing a gradient:",
        *(f"  {result_line(report, r)}" for r in report.results),
    ]
    return "\n".join(lines)


def _warn_if_nothing_checked(report: Report, stacklevel: int = 1) -> None:
    """Warn (:class:`GradcmpWarning`) when ``report`` checked nothing; ``stacklevel`` as for
    :func:`warnings.warn`, counted from the caller of this function (1: the caller's line)."""
    __tracebackhide__ = True  # under -W error: the test's line and the message
    message = _nothing_checked(report)
    if message is not None:
        warnings.warn(message, GradcmpWarning, stacklevel=stacklevel + 1)


def _worst_first(item) -> float:
    """Sort key: the largest ratio first; a non-finite error (NaN ratio) worst of all."""
    e = item[1]
    if not math.isfinite(e.abs) or math.isnan(e.ratio):
        return -math.inf
    return -e.ratio


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
        offending = sorted(
            ((name, e) for name, e in r.errors.items() if e.verdict != AGREE), key=_worst_first
        )
        for name, e in offending[:SHOWN_ELEMENTS]:
            lines.append(
                f"    {name} = {values[name]!r}, {judged_by} {to_float(exact[name])!r}: "
                f"error {e.abs:.3g} (rel {e.rel:.2g}, {e.ulp:.3g} ulp), "
                f"bound {e.bound:.3g}, ratio {e.ratio:.3g}"
            )
        if len(offending) > SHOWN_ELEMENTS:
            more = len(offending) - SHOWN_ELEMENTS
            lines.append(f"    … and {more} more (the JSON report has them all)")
    port = report.port
    if port is not None and port.fails:  # the sides compute different functions
        lines.append(f"  port ({' vs '.join(port.sides)}): {port.verdict}: {port.note}")
    lines.append(f"{verdict_line(report)}, exit code {report.exit_code}")
    return "\n".join(lines)
