"""The report's sentences, shared by every format: the header, the verdict line and its notes,
the worlds, the port, the baseline, the input rounding and the timings. One wording everywhere
(the table, Markdown, GitHub annotations, JUnit) so that every format tells one story."""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from ..distributed.consensus import ranks_text
from ..judging.agreement import AGREE, DISAGREE, INCONCLUSIVE, Error
from ..outcomes import FAILED, OK, SKIPPED
from ..params import element_names

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report, Result

# How a backend × dtype ended, in the order the verdict line counts them. ``missing``: not
# installed although named with -b (it fails the run, exit 3; its JSON status is "skipped").
OUTCOMES = (AGREE, INCONCLUSIVE, DISAGREE, FAILED, "missing", SKIPPED)


def seconds_text(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def ratio_text(ratio: float, digits: int = 2) -> str:
    """|error| / τ to ``digits`` significant digits, but never a ratio above 1 shown as 1 or
    less: 1.0211 is "1.02" (beyond τ: disagree), not "1" (which reads as within it)."""
    text = f"{ratio:.{digits}g}"
    while ratio > 1 and float(text) <= 1 and digits < 17:
        digits += 1
        text = f"{ratio:.{digits}g}"
    return text


# Past this many gradient elements the grid and the Markdown table have one column per
# parameter tensor, showing its worst element (the JSON report still has every element).
MAX_ELEMENT_COLUMNS = 8


def columns(report: Report) -> dict[str, list[str]]:
    """Column title → the outputs it shows: one each, or one per parameter tensor when the
    model has more than MAX_ELEMENT_COLUMNS gradient elements."""
    params = report.problem.params
    elements = params.elements()
    if len(elements) <= MAX_ELEMENT_COLUMNS:
        return {"loss": ["loss"], **{e: [e] for e in elements}}
    grouped: dict[str, list[str]] = {"loss": ["loss"]}
    for name, value in params.values.items():
        title = f"{name} {list(value.shape)}" if value.shape else name
        grouped[title] = element_names(name, value.shape)
    return grouped


def error_lines(e: Error) -> tuple[str, str]:
    """('0.667 ulp · rel 6.2e-08', 'τ 5.8e-05 · ratio 0.087') for one output."""
    if not math.isfinite(e.abs):
        first = "non-finite"
    elif e.abs == 0:
        first = "exact"
    else:
        ulp = f"{e.ulp:.3g}" if e.ulp < 1e4 else f"{e.ulp:.2e}"
        first = f"{ulp} ulp · rel {e.rel:.1e}"
    return first, f"τ {e.bound:.2g} · ratio {ratio_text(e.ratio)}"


def reference_rows(report: Report) -> list[tuple[str, object]]:
    """One reference row ("all") when every dtype received the same inputs, else one each."""
    by_dtype = report.reference.by_dtype
    if len({id(v) for v in by_dtype.values()}) == 1:
        return [("all", next(iter(by_dtype.values())))]
    return list(by_dtype.items())


def header_lines(report: Report) -> list[str]:
    problem = report.problem
    data = problem.data
    names = data.feature_names
    # Past 8 features, the first 6 and the last (the JSON report has them all).
    shown_names = names if len(names) <= 8 else [*names[:6], "…", names[-1]]
    features = ", ".join(shown_names)
    plural = "s" if data.features != 1 else ""
    elements = problem.params.elements()
    shown = [f"{name} = {float(x)!r}" for name, x in zip(elements[:6], _flat_values(report))]
    more = f", … ({len(elements)} in all)" if len(elements) > 6 else ""
    return [
        f"model {problem.model.name}: {problem.model.formula}",
        f"data {data.path}: {data.rows} rows, {data.features} feature{plural} ({features}), "
        f"target {data.target}",
        f"params: {', '.join(shown)}{more}",
        f"reference: {_reference_words(report)}, on the values each dtype receives",
    ]


def _reference_words(report: Report) -> str:
    sides = [name for name, s in report.reference.sides.items() if not s.failure]
    if not sides:
        return report.reference.method
    own = f"each side ({', '.join(sides)}) by the shadow evaluation of its own graph"
    if report.problem.model.loss is None:
        return own
    return f"{own}; others by the generic loss's {report.reference.method}"


def _flat_values(report: Report):
    return (x for v in report.problem.params.values.values() for x in v.ravel().tolist())


def rounding_lines(report: Report) -> list[str]:
    lines = []
    for dtype, r in report.reference.rounding.items():
        if not r.rounded:
            lines.append(f"input rounding, {dtype}: none (every input value is exact)")
            continue
        shifts = [v for v in r.shift_rel.values() if v is not None]
        moved = f"; the exact answer moves by up to rel {max(shifts):.1e}" if shifts else ""
        lines.append(
            f"input rounding, {dtype}: {r.rounded} of {r.values} values rounded "
            f"(max rel {r.max_rel:.1e}){moved}"
        )
    return lines


def outcome(report: Report, r: Result) -> str:
    """One of OUTCOMES: the verdict of a result that ran, else its status (``missing`` for a
    backend named with -b that is not installed: the run fails on it)."""
    if r.status == OK:
        return r.verdict
    if r.status == SKIPPED and r.missing and report.explicit_backends:
        return "missing"
    return r.status


def outcome_counts(report: Report) -> dict[str, int]:
    """How many results ended each way (every key of OUTCOMES, zeros included): the counts
    every format states (the verdict line, JSON's ``counts``, JUnit's totals)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for r in report.results:
        counts[outcome(report, r)] += 1
    return counts


def result_name(r: Result) -> str:
    """How every format names a result: ``jax-grad float64 (loss_jax)`` — the side that ran
    where the loss file has several."""
    side = f" ({r.side})" if r.side else ""
    return f"{r.backend} {r.dtype}{side}"


def result_line(report: Report, r: Result) -> str:
    """``NAME: verdict: why`` or ``NAME: failed: note`` — one result's sentence, the same in
    the verdict lines (and so GitHub's log and Markdown), JUnit's messages, the pytest message."""
    if r.status == OK:
        return f"{result_name(r)}: {r.verdict}: {r.why}"
    return f"{result_name(r)}: {outcome(report, r)}: {r.note}"


def verdict_line(report: Report) -> str:
    """``verdict: agree (2 agree, 1 failed)``: the run's verdict and how every result ended.
    A run where nothing produced a result is inconclusive and says so, with its counts."""
    counts = outcome_counts(report)
    shown = ", ".join(f"{n} {name}" for name, n in counts.items() if n)
    if not any(r.status == OK for r in report.results):
        nothing = "no backend produced a result"
        shown = f"{nothing}: {shown}" if shown else nothing
    if report.port is not None:
        shown += f"; port {report.port.verdict}"
    return f"verdict: {report.verdict} ({shown})"


def verdict_lines(report: Report) -> list[str]:
    """The overall verdict, then one line per result that is not a plain agree."""
    lines = [verdict_line(report)]
    for r in report.results:
        if r.status != OK or r.why:
            lines.append(f"  {result_line(report, r)}")
        if r.status == OK and r.note:
            lines.append(f"  {result_name(r)}: note: {r.note}")
    return lines + world_lines(report)


def world_lines(report: Report) -> list[str]:
    """One line per distributed backend: its engine, communication and rows per rank."""
    lines, seen = [], set()
    for r in report.results:
        if r.world is None or r.backend in seen:
            continue
        seen.add(r.backend)
        w = r.world
        rows = ", ".join(map(str, w["shards"]))
        reduction = f", shards weighted for a {w['reduction']} over rows" if w["reduction"] else ""
        startup = w.get("startup_seconds")
        startup = f"; start-up {startup:.2f} s" if startup is not None else ""
        statuses = [rank for rank in w.get("ranks", ()) if rank["status"] != "ok"]
        by_parameters: dict[tuple, list[int]] = {}
        for status in statuses:
            by_parameters.setdefault(tuple(status["parameters"]), []).append(status["rank"])
        ranks = (
            "; ".join(
                f"{ranks_text(group)} {'differs' if len(group) == 1 else 'differ'} from rank 0 in "
                f"{', '.join(parameters)}"
                for parameters, group in by_parameters.items()
            )
            or "every rank holds the same gradient"
        )
        lines.append(
            f"  {r.backend}: {w['engine']} over {w['comm']}, {w['world_size']} ranks, "
            f"rows per rank {rows}{reduction}; {ranks}{startup}"
        )
    return lines


def port_lines(report: Report) -> list[str]:
    """The port verdict: whether the sides compute the same function, where they part, and
    the kinks and ties they were evaluated at (nothing for a file with one side)."""
    port = report.port
    if port is None:
        return []
    lines = [f"port ({' vs '.join(port.sides)}): {port.verdict}: {port.note}"]
    for d in port.divergence:
        where = f" at {_shown_path(d.file)}:{d.line}" if d.file else ""
        code = f": {d.code}" if d.code else ""
        lines.append(f"  {d.side} parts{where} ({d.op}, {d.phase}, rel {d.rel:.1e}){code}")
    for k in port.kinks:
        where = f" {_shown_path(k.file)}:{k.line}" if k.file else ""
        lines.append(f"  kink, {k.side}{where} ({k.op}): {k.note}")
    for name, side in report.reference.sides.items():
        if side.failure:
            lines.append(f"  {name}: {side.failure}")
    return lines


def _shown_path(path: str) -> str:
    """A user's file as they would name it: relative to the working directory when inside it
    (the JSON report keeps the path as traced)."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive
        return path
    return path if relative.startswith("..") else relative


def baseline_lines(report: Report) -> list[str]:
    comparison = report.baseline
    if comparison is None:
        return []
    counts: dict[str, int] = {}
    for c in comparison.changes:
        counts[c.status] = counts.get(c.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [f"baseline {comparison.path}: {comparison.verdict} ({summary})"]
    for c in comparison.changes:
        if c.status != "same":
            moved = f", moved {c.moved_ulp:.3g} ulp: {c.detail}" if c.moved_ulp else ""
            was, now = c.was or "—", c.now or "—"  # gone or new: nothing on one side
            lines.append(f"  {c.backend} {c.dtype}: {c.status} ({was} → {now}{moved})")
    return lines


def timing_lines(report: Report) -> list[str]:
    """Where the time went (``--timings``): load, reference, framework imports, each call."""
    t = report.timings
    first = [f"{k} {seconds_text(t[k])}" for k in ("total", "load", "reference") if k in t]
    lines = [f"timings: {', '.join(first)}"]
    if t.get("setup"):
        imports = ", ".join(f"{k} {seconds_text(v)}" for k, v in t["setup"].items())
        lines.append(f"  setup (imports): {imports}")
    if t.get("workers"):
        lines.append(f"  in worker processes: {', '.join(t['workers'])}")
    calls = [r for r in report.results if r.seconds is not None]
    for r in calls:
        compiled = f" (+{seconds_text(r.compile_seconds)} compile)" if r.compile_seconds else ""
        lines.append(f"  {r.backend} {r.dtype}: {seconds_text(r.seconds)}{compiled}")
    return lines
