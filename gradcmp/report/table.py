"""The table people read.

By default one line per backend × dtype: the verdict, the worst output with its error in ULPs of
that row's dtype and as a ratio of the rounding bound τ (the ratio decides the verdict), and the
time. It fits an 80-column terminal; the reference values are the lines above it.

``--detail`` (and ``--format plain``) add every output: the *grid* has one column per output,
each cell the value (``repr``: enough digits to round-trip), its distance to the reference and
τ. When the grid is wider than the terminal, the same cells are printed one output per line
instead, and a line says so. A number is never cut: columns holding numbers do not wrap and a
layout that would squeeze them is not used.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..console import console_for  # noqa: F401  (re-exported for the renderers)
from ..judging.agreement import AGREE, DISAGREE, Error, to_float, worst_output
from ..outcomes import OK
from .lines import (
    MAX_ELEMENT_COLUMNS,
    baseline_lines,
    columns,
    error_lines,
    header_lines,
    outcome,
    port_lines,
    ratio_text,
    reference_rows,
    result_name,
    rounding_lines,
    seconds_text,
    timing_lines,
    verdict_lines,
)

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report, Result

# The reference shows the exact fraction beside the value when it is this short.
SHOWN_FRACTION_CHARS = 24
VERDICT_STYLE = {AGREE: "green", DISAGREE: "bold red", "inconclusive": "yellow"}


def _backend_name(r: Result) -> str:
    return f"{r.backend} ({r.side})" if r.side else r.backend


def _verdict_text(report: Report, r: Result) -> Text:
    """The verdict of a result that ran, else its outcome as the verdict line counts it
    (``missing``: named with -b and not installed, which fails the run)."""
    said = outcome(report, r)
    if r.status == OK:
        return Text(said, style=VERDICT_STYLE[said])
    return Text(said, style="red" if said in ("failed", "missing") else "dim")


def _time_text(r: Result) -> str:
    """The call's time; a jit's compile time is in --detail and --timings."""
    return seconds_text(r.seconds)


def _ulp_text(e: Error) -> str:
    return error_lines(e)[0].split(" · ")[0]


# ---- the compact default: one line per backend × dtype ----------------------------------


def reference_value_lines(report: Report) -> list[str]:
    """The reference's values, one output per line (the compact table's numbers are errors)."""
    lines = []
    for dtype, values in reference_rows(report):
        exact = values.outputs()
        label = "" if dtype == "all" else f" ({dtype} inputs)"
        outputs = [k for group in columns(report).values() for k in group]
        if len(outputs) > MAX_ELEMENT_COLUMNS + 1:
            largest = max(abs(to_float(exact[k])) for k in outputs[1:])
            lines.append(
                f"reference values{label}: loss = {to_float(exact['loss'])!r}; {len(outputs) - 1} "
                f"gradient elements, largest |value| {largest!r} (all: --detail or --format json)"
            )
            continue
        shown = []
        for k in outputs:
            fraction = str(exact[k])
            short = "/" in fraction and len(fraction) <= SHOWN_FRACTION_CHARS
            exactly = f" = {fraction}" if short else ""
            shown.append(f"{k} = {to_float(exact[k])!r}{exactly}")
        lines.append(f"reference values{label}: " + "; ".join(shown))
    return lines


def compact_cells(report: Report, timings: bool = True) -> list[str]:
    """The numbers of the compact table: each must print whole or the layout is not used."""
    cells = []
    for r in report.results:
        if timings:
            cells.append(_time_text(r))
        if r.status == OK and r.errors:
            e = r.errors[worst_output(r.errors, list(r.errors))]
            cells += [_ulp_text(e), ratio_text(e.ratio)]
    return [c for c in cells if c]


def printed(table: Table, width: int) -> str:
    """``table`` as plain text ``width`` columns wide."""
    probe = Console(file=io.StringIO(), width=width, no_color=True)
    with probe.capture() as captured:
        probe.print(table)
    return captured.get()


def prints_whole(table: Table, width: int, cells: list[str]) -> bool:
    """Whether every one of ``cells`` appears uncut when ``table`` is printed ``width`` wide
    (rich folds what may fold, then crops what may not: a crop would cut a number)."""
    text = printed(table, width)
    return all(cell in text for cell in cells)


def compact(report: Report, timings: bool = True) -> Table:
    # Two spaces between columns (the box's blank divider and a right padding of one).
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    # A long name (a port's side, a tensor element) may fold onto a second line; numbers never.
    table.add_column("backend", overflow="fold", min_width=14)
    table.add_column("dtype", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("worst output", overflow="fold")
    table.add_column("error", no_wrap=True, justify="right")
    table.add_column("of τ", no_wrap=True, justify="right")
    if timings:
        table.add_column("time", no_wrap=True, justify="right")
    for r in report.results:
        if r.status == OK and r.errors:
            k = worst_output(r.errors, list(r.errors))
            e = r.errors[k]
            style = VERDICT_STYLE[e.verdict]
            cells = [k, Text(_ulp_text(e), style=style), Text(ratio_text(e.ratio), style=style)]
        else:
            cells = [Text("—", style="dim")] * 3
        time = [_time_text(r)] if timings else []
        table.add_row(_backend_name(r), r.dtype, _verdict_text(report, r), *cells, *time)
    return table


def compact_lines(report: Report) -> list[Text]:
    """The compact table's rows as sentences, for a terminal too narrow for its columns."""
    lines = []
    for r in report.results:
        line = Text(f"{result_name(r)}: ") + _verdict_text(report, r)
        if r.status == OK and r.errors:
            k = worst_output(r.errors, list(r.errors))
            e = r.errors[k]
            line.append(f"; worst {k} {_ulp_text(e)}, {e.ratio:.2g} of τ")
        lines.append(line)
    return lines


# ---- the detail: every output -----------------------------------------------------------


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


def _shown_outputs(r: Result, outputs: list[str]) -> tuple[str, int] | None:
    """The output a column shows for a result (its worst, for a tensor) and how many it has."""
    present = [k for k in outputs if k in r.errors]
    if not present:
        return None
    return (present[0] if len(outputs) == 1 else worst_output(r.errors, present)), len(present)


def grid(report: Report, plain: bool = False) -> Table:
    """One column per output (or per parameter tensor): value, error, τ."""
    reference = report.reference
    groups = columns(report)
    table = Table(box=box.ASCII if plain else box.SIMPLE_HEAD, show_edge=plain, pad_edge=plain)
    table.add_column("backend", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for title in groups:
        table.add_column(title, no_wrap=True)
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
                f"{max(abs(to_float(exact[k])) for k in outputs)!r}",
                style="bold",
            )
            for outputs in groups.values()
        ]
        table.add_row(Text(reference.name, style="bold"), dtype, "reference", *cells, *timing)
    if table.rows:
        table.rows[-1].end_section = True

    for r in report.results:
        cells = []
        for outputs in groups.values():
            shown = _shown_outputs(r, outputs) if r.status == OK else None
            if shown is None:
                cells.append(Text("—", style="dim"))
                continue
            k, count = shown
            cell = _cell({"loss": r.loss, **r.grads}[k], r.errors[k])
            cells.append(cell if len(outputs) == 1 else Text(f"worst of {count}: {k}\n") + cell)
        compiled = f"\n+{seconds_text(r.compile_seconds)} compile" if r.compile_seconds else ""
        timing = [] if plain else [seconds_text(r.seconds) + compiled]
        backend = f"{r.backend}\n({r.side})" if r.side else r.backend
        table.add_row(backend, r.dtype, _verdict_text(report, r), *cells, *timing)
    return table


def long_form(report: Report) -> list[Text]:
    """The grid's cells one output per line, for a terminal narrower than the grid: a heading
    per backend × dtype, then each output (for a tensor, its worst element) with its value,
    error in ULPs, relative error, τ and ratio in aligned columns."""
    groups = columns(report)
    head = ("output", "value", "error", "rel", "τ", "ratio", "")
    blocks: list[tuple[Text, list[tuple[str, ...]]]] = []
    for dtype, values in reference_rows(report):
        exact = values.outputs()
        rows = []
        for title, outputs in groups.items():
            if len(outputs) == 1:
                fraction = str(exact[outputs[0]])
                exactly = f"= {fraction}" if len(fraction) <= SHOWN_FRACTION_CHARS else ""
                rows.append((title, repr(to_float(exact[outputs[0]])), exactly))
            else:
                largest = max(abs(to_float(exact[k])) for k in outputs)
                rows.append((title, "", f"{len(outputs)} elements, largest |value| {largest!r}"))
        blocks.append((Text(f"{report.reference.name} ({dtype})", style="bold"), rows))
    for r in report.results:
        heading = Text(f"{result_name(r)}: ", style="bold") + _verdict_text(report, r)
        rows = [head] if r.status == OK else []
        for outputs in groups.values():
            shown = _shown_outputs(r, outputs) if r.status == OK else None
            if shown is not None:
                k, e = shown[0], r.errors[shown[0]]
                value = repr({"loss": r.loss, **r.grads}[k])
                rel = f"{e.rel:.1e}" if e.abs else ""
                cells = (_ulp_text(e), rel, f"{e.bound:.2g}", ratio_text(e.ratio))
                rows.append((k, value, *cells, VERDICT_STYLE[e.verdict]))
        blocks.append((heading, rows))
    widths = [
        # Names and values: every row; the error columns: result rows (more than 3 cells).
        max((len(row[i]) for _, rows in blocks for row in rows if i < 2 or len(row) > 3), default=0)
        for i in range(6)
    ]
    lines = []
    for heading, rows in blocks:
        lines.append(heading)
        for row in rows:
            name, value = row[0].ljust(widths[0]), row[1].ljust(widths[1])
            if len(row) == 3:  # a reference value; a tensor's summary is not one, kept apart
                shown = f"{value}  {row[2]}" if row[1] else row[2]
                lines.append(Text(f"  {name}  {shown}".rstrip()))
                continue
            error = "  ".join(
                cell.rjust(widths[i]) if i > 1 else cell for i, cell in enumerate(row[:6]) if i >= 2
            )
            line = Text(f"  {name}  {value}  ", style="dim" if row is head else "")
            line.append(error, style=row[6] or ("dim" if row is head else ""))
            lines.append(line)
    return lines


def natural_width(table: Table) -> int:
    """The columns the table needs with nothing folded."""
    lines = printed(table, 100_000).splitlines()
    return max((len(line.rstrip()) for line in lines), default=0)


def render(
    report: Report,
    console: Console,
    plain: bool = False,
    timings: bool = False,
    detail: bool = False,
) -> None:
    """``plain``: the grid in ASCII at its natural width, no colour and no timings (stable for
    diffs). Otherwise the compact table, and with ``detail`` the grid where it fits."""

    def say(line: str, style: str = "") -> None:
        console.print(Text(line, style=style), highlight=False)

    for line in header_lines(report):
        say(line)
    if not plain:
        for line in reference_value_lines(report):
            say(line)
    console.print()
    if plain:
        table = grid(report, plain=True)
        console.width = max(console.width, natural_width(table))
        console.print(table)
    else:
        cells = compact_cells(report)
        table = compact(report)
        if not prints_whole(table, console.width, cells):
            say(f"(the time column is left out to fit {console.width} columns: --timings)", "dim")
            table = compact(report, timings=False)
        if prints_whole(table, console.width, compact_cells(report, timings=False)):
            console.print(table)
        else:  # narrower still: a sentence per row, wrapped between words
            for line in compact_lines(report):
                console.print(line, highlight=False)
        if detail:
            table = grid(report)
            needed = natural_width(table)
            if needed > console.width:
                grouped = any(len(outputs) > 1 for outputs in columns(report).values())
                what = "each parameter tensor's worst element" if grouped else "every output"
                say(
                    f"{what}, one per line (the grid needs {needed} columns, this terminal "
                    f"has {console.width}; --format plain prints it whole):",
                    "dim",
                )
                # Whole lines: a terminal narrower still wraps them, it never cuts a number.
                for line in long_form(report):
                    console.print(line, no_wrap=True, overflow="ignore", crop=False)
            else:
                console.print(table)
    if timings:
        for line in timing_lines(report):
            say(line)
    for line in rounding_lines(report) + baseline_lines(report) + port_lines(report):
        say(line)
    style = VERDICT_STYLE.get(report.verdict, "")
    for i, line in enumerate(verdict_lines(report)):
        say(line, style if i == 0 else "")
