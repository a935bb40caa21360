"""The table people read: reference first, then one row per backend × dtype.

Each cell holds the value (``repr``: enough digits to round-trip) and, under it, the distance
to the reference in ULPs of that row's dtype and as a relative error, then the rounding bound
τ and the ratio |error| / τ that decides the verdict. ``plain`` is the same table in ASCII
without colour and without timings, so that two runs can be diffed.
"""

from __future__ import annotations

import math
import os

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..agreement import AGREE, DISAGREE, Error, to_float, worst_output
from ..console import console_for  # noqa: F401  (re-exported for the renderers)
from ..distributed.consensus import ranks_text
from ..params import element_names
from ..runner import OK, Report

# The reference cell shows the exact fraction under the value when it is this short.
SHOWN_FRACTION_CHARS = 24
VERDICT_STYLE = {AGREE: "green", DISAGREE: "bold red", "inconclusive": "yellow"}


def seconds_text(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def error_lines(e: Error) -> tuple[str, str]:
    """('0.667 ulp · rel 6.2e-08', 'τ 5.8e-05 · ratio 0.087') for one output."""
    if not math.isfinite(e.abs):
        first = "non-finite"
    elif e.abs == 0:
        first = "exact"
    else:
        ulp = f"{e.ulp:.3g}" if e.ulp < 1e4 else f"{e.ulp:.2e}"
        first = f"{ulp} ulp · rel {e.rel:.1e}"
    return first, f"τ {e.bound:.2g} · ratio {e.ratio:.2g}"


def _cell(value: float, error: Error) -> Text:
    first, second = error_lines(error)
    text = Text(repr(value))
    text.append(f"\n{first}\n{second}", style=VERDICT_STYLE[error.verdict])
    return text


def _reference_cell(value) -> Text:
    text = Text(repr(to_float(value)), style="bold")
    fraction = str(value)
    if len(fraction) <= SHOWN_FRACTION_CHARS and "/" in fraction:
        text.append(f"\n= {fraction}", style="dim")
    return text


def reference_rows(report: Report) -> list[tuple[str, object]]:
    """One reference row ("all") when every dtype received the same inputs, else one each."""
    by_dtype = report.reference.by_dtype
    if len({id(v) for v in by_dtype.values()}) == 1:
        return [("all", next(iter(by_dtype.values())))]
    return list(by_dtype.items())


# Past this many gradient elements the table has one column per parameter tensor, showing its
# worst element (the JSON report still has every element).
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


def _summary_cell(name: str, value: float, error: Error, count: int) -> Text:
    text = _cell(value, error)
    return Text(f"worst of {count}: {name}\n", style="dim") + text


def build(report: Report, plain: bool = False) -> Table:
    reference = report.reference
    groups = columns(report)
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain, pad_edge=plain)
    table.add_column("backend", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for title in groups:
        table.add_column(title, no_wrap=True, overflow="fold")
    if not plain:
        table.add_column("time", justify="right", no_wrap=True)
    timing = [] if plain else [""]

    for dtype, values in reference_rows(report):
        exact = values.outputs()
        cells = [
            _reference_cell(exact[outputs[0]])
            if len(outputs) == 1
            else Text(
                f"{len(outputs)} elements\nlargest |value| "
                f"{max(abs(to_float(exact[k])) for k in outputs):.6g}",
                style="bold",
            )
            for outputs in groups.values()
        ]
        table.add_row(Text(reference.name, style="bold"), dtype, "reference", *cells, *timing)
    if table.rows:
        table.rows[-1].end_section = True

    for r in report.results:
        if r.status == OK:
            verdict = Text(r.verdict, style=VERDICT_STYLE[r.verdict])
            values = {"loss": r.loss, **r.grads}
            cells = []
            for outputs in groups.values():
                present = [k for k in outputs if k in r.errors]
                if not present:
                    cells.append(Text("—", style="dim"))
                elif len(outputs) == 1:
                    cells.append(_cell(values[present[0]], r.errors[present[0]]))
                else:
                    k = worst_output(r.errors, present)
                    cells.append(_summary_cell(k, values[k], r.errors[k], len(present)))
        else:
            verdict = Text(r.status, style="red" if r.status == "failed" else "dim")
            cells = [Text("—", style="dim")] * len(groups)
        compiled = f"\n+{seconds_text(r.compile_seconds)} compile" if r.compile_seconds else ""
        timing = [] if plain else [seconds_text(r.seconds) + compiled]
        backend = f"{r.backend}\n({r.side})" if r.side else r.backend
        table.add_row(backend, r.dtype, verdict, *cells, *timing)
    return table


def header_lines(report: Report) -> list[str]:
    problem = report.problem
    data = problem.data
    features = ", ".join(data.feature_names)
    plural = "s" if data.features != 1 else ""
    shown = [
        f"{name} = {float(x)!r}" for name, x in zip(problem.params.elements(), _flat_values(report))
    ]
    more = f", … ({len(shown)} in all)" if len(shown) > 6 else ""
    return [
        f"model {problem.model.name}: {problem.model.formula}",
        f"data {data.path}: {data.rows} rows, {data.features} feature{plural} ({features}), "
        f"target {data.target}",
        f"params: {', '.join(shown[:6])}{more}",
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


def verdict_lines(report: Report) -> list[str]:
    """The overall verdict, then one line per result that is not a plain agree."""
    ok = [r for r in report.results if r.status == OK]
    counts = ", ".join(
        f"{sum(r.verdict == v for r in ok)} {v}"
        for v in (AGREE, "inconclusive", DISAGREE)
        if any(r.verdict == v for r in ok)
    )
    # Backends that did not run count too: the line must not say "agree" alone where the run
    # exits 3 (a failed backend) or skipped what was asked for.
    for status in ("failed", "skipped"):
        n = sum(r.status == status for r in report.results)
        if n:
            counts = f"{counts}, {n} {status}" if counts else f"{n} {status}"
    counts = counts or "no backend produced a result"
    if report.port is not None:
        counts += f"; port {report.port.verdict}"
    lines = [f"verdict: {report.verdict} ({counts})"]
    for r in report.results:
        if r.why:
            side = f" ({r.side})" if r.side else ""
            lines.append(f"  {r.backend} {r.dtype}{side}: {r.verdict}: {r.why}")
        if r.note:
            kind = "note" if r.status == OK else r.status
            lines.append(f"  {r.backend} {r.dtype}: {kind}: {r.note}")
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
        ranks = "; ".join(
            f"{ranks_text(group)} {'differs' if len(group) == 1 else 'differ'} from rank 0 in "
            f"{', '.join(parameters)}"
            for parameters, group in by_parameters.items()
        ) or "every rank holds the same gradient"
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
            lines.append(f"  {c.backend} {c.dtype}: {c.status} ({c.was} → {c.now}{moved})")
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


def render(report: Report, console: Console, plain: bool = False, timings: bool = False) -> None:
    for line in header_lines(report):
        console.print(line, highlight=False, markup=False)
    console.print()
    console.print(build(report, plain))
    if timings:
        for line in timing_lines(report):
            console.print(line, highlight=False, markup=False)
    for line in rounding_lines(report):
        console.print(line, highlight=False, markup=False)
    for line in baseline_lines(report):
        console.print(line, highlight=False, markup=False)
    for line in port_lines(report):
        console.print(line, highlight=False, markup=False)
    style = VERDICT_STYLE.get(report.verdict, "")
    for i, line in enumerate(verdict_lines(report)):
        console.print(Text(line, style=style if i == 0 else ""), highlight=False)
