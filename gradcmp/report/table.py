"""The table people read: reference first, then one row per backend × dtype.

Each cell holds the value (``repr``: enough digits to round-trip) and, under it, the distance
to the reference in ULPs of that row's dtype and as a relative error.
"""

from __future__ import annotations

import math
from typing import IO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..compare import Error
from ..runner import OK, Report

# Rows shorter than this many characters show the exact fraction under the reference value.
SHOWN_FRACTION_CHARS = 24


def console_for(stream: IO[str], colour: bool | None = None) -> Console:
    """A rich console: colour on a terminal, plain text when piped or written to a file."""
    console = Console(file=stream, force_terminal=colour, no_color=colour is False)
    if not console.is_terminal:
        # Piped output is not squeezed to 80 columns: a folded number is hard to copy.
        console = Console(file=stream, width=max(console.width, 200), no_color=True)
    return console


def _seconds(s: float | None) -> str:
    if s is None:
        return ""
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _error_text(e: Error) -> Text:
    if e.abs == 0:
        return Text("exact", style="green")
    if not math.isfinite(e.ulp):
        return Text("non-finite", style="bold red")
    style = "green" if e.ulp <= 0.5 else "yellow"
    ulp = f"{e.ulp:.3g}" if e.ulp < 1e4 else f"{e.ulp:.2e}"
    return Text(f"{ulp} ulp · rel {e.rel:.1e}", style=style)


def _cell(value: float, error: Error) -> Text:
    text = Text(repr(value))
    text.append("\n")
    text.append_text(_error_text(error))
    return text


def _reference_cell(value) -> Text:
    text = Text(repr(float(value)), style="bold")
    fraction = str(value)
    if len(fraction) <= SHOWN_FRACTION_CHARS and "/" in fraction:
        text.append(f"\n= {fraction}", style="dim")
    return text


def build(report: Report) -> Table:
    problem, reference = report.problem, report.reference
    outputs = ["loss", *problem.params.elements()]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("backend", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    for name in outputs:
        table.add_column(name, no_wrap=True, overflow="fold")
    table.add_column("time", justify="right", no_wrap=True)

    distinct = {id(v): v for v in reference.by_dtype.values()}
    if len(distinct) == 1:
        rows = [("all", next(iter(distinct.values())))]
    else:
        rows = list(reference.by_dtype.items())
    for dtype, values in rows:
        cells = [_reference_cell(v) for v in values.outputs().values()]
        table.add_row(Text(reference.name, style="bold"), dtype, *cells, "", end_section=False)
    table.rows[-1].end_section = True

    for r in report.results:
        if r.status == OK:
            cells = [_cell(r.loss, r.errors["loss"])]
            cells += [_cell(r.grads[k], r.errors[k]) for k in outputs[1:]]
        else:
            style = "red" if r.status == "failed" else "dim"
            cells = [Text(r.status, style=style)] + [Text("—", style="dim")] * (len(outputs) - 1)
        table.add_row(r.backend, r.dtype, *cells, _seconds(r.seconds))
    return table


def _header(report: Report) -> str:
    problem = report.problem
    data = problem.data
    features = ", ".join(data.feature_names)
    plural = "s" if data.features != 1 else ""
    params = ", ".join(
        f"{k} = {float(x)!r}" for k, v in problem.params.values.items() for x in v.ravel()[:4]
    )
    return (
        f"model {problem.model.name}: {problem.model.formula}\n"
        f"data {data.path}: {data.rows} rows, {data.features} feature{plural} ({features}), "
        f"target {data.target}\n"
        f"params: {params}\n"
        f"reference: {report.reference.method}, on the values each dtype receives"
    )


def _rounding_lines(report: Report) -> list[str]:
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


def render(report: Report, console: Console) -> None:
    console.print(_header(report), highlight=False, markup=False)
    console.print()
    console.print(build(report))
    for line in _rounding_lines(report):
        console.print(line, highlight=False, markup=False)
    for r in report.results:
        if r.note:
            console.print(f"{r.backend} {r.dtype}: {r.note}", highlight=False, markup=False)
