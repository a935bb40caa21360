"""``gradcmp bench`` for people and programs: options checked, a progress bar while it runs,
then a table (rich) or JSON. The measuring is in bench/__init__.py."""

from __future__ import annotations

import json
import sys

from ..errors import UsageError


def parse_rows(text: str) -> list[int]:
    sizes = []
    for raw in text.split(","):
        try:
            value = float(raw.strip())
        except ValueError:
            raise UsageError(
                f"--rows: {raw.strip()!r} is not a number", hint="write --rows 1e3,1e6"
            ) from None
        if not value.is_integer() or value < 1 or value > 1e10:
            raise UsageError(f"--rows: {raw.strip()} is not a row count from 1 to 1e10")
        sizes.append(int(value))
    return sizes


def run_and_report(
    sizes, backends, dtypes, features, repeat, plot_path, output_format, device="cpu"
) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from .. import bench
    from ..backends import DEFAULT_BACKENDS, REFERENCE_NAME, missing_modules, parse_backends
    from ..console import console_for
    from ..dtypes import parse_dtypes

    names = [n.strip() for n in backends.split(",")] if backends else list(DEFAULT_BACKENDS)
    with_reference = REFERENCE_NAME in names
    chosen = [n for n in names if n != REFERENCE_NAME]
    chosen = parse_backends(",".join(chosen), device) if chosen else []
    chosen_dtypes = parse_dtypes(dtypes)
    if plot_path is not None:
        from pathlib import Path

        directory = Path(plot_path).parent
        if not str(plot_path).strip() or Path(plot_path).is_dir() or not directory.is_dir():
            raise UsageError(
                f"cannot write the plot to {plot_path!r}", hint="give a PNG file in a directory"
            )
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError(
                "--plot needs matplotlib", hint="pip install 'gradcmp[plot]'"
            ) from None
    from ..backends import BACKENDS

    runnable = [n for n in chosen if not missing_modules(BACKENDS[n])]
    skipped = [n for n in chosen if n not in runnable]
    timed = runnable + ([bench.REFERENCE] if with_reference else [])
    if not timed:
        raise UsageError("no backend to time is installed", hint="see 'gradcmp backends'")
    if any(n.endswith("@cuda") for n in runnable):
        device = "cuda"  # -b torch-grad@cuda: its rows against the GPU's roofline
    if device == "cuda":
        check_device(runnable, BACKENDS)

    total = len(timed) * len(sizes) * len(chosen_dtypes)
    stderr = console_for(sys.stderr)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=stderr,
        transient=True,
        disable=not stderr.is_terminal,
        auto_refresh=False,  # no refresh thread: the benchmark forks its processes
    ) as progress:
        task = progress.add_task(f"measuring the {device} roofline", total=total)

        def advance(m: bench.Measurement) -> None:
            progress.update(task, advance=1, description=f"{m.backend} {m.dtype} {m.rows:,} rows")
            progress.refresh()

        progress.refresh()
        try:
            roofline, measurements = bench.run_bench(
                sizes, timed, chosen_dtypes, repeat, features, progress=advance, device=device
            )
        except MemoryError:
            largest = max(sizes)
            raise UsageError(
                f"not enough memory for the data of {largest:,} rows × {features + 1} columns",
                hint="give smaller --rows",
            ) from None
    if output_format == "json":
        report = bench.to_dict(roofline, measurements, repeat)
        report["not_installed"] = skipped
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        render(roofline, measurements, repeat, skipped, console_for(sys.stdout))
    if plot_path is not None:
        bench.plot(measurements, roofline.bandwidth_bytes_per_second, plot_path)
    return 3 if any(m.status == "failed" for m in measurements) else 0


def check_device(names, backends) -> None:
    """One line and exit 3 before any work where this machine cannot serve ``--device cuda``:
    a backend's framework without a CUDA build, or no CUDA torch to measure the roofline."""
    from ..backends.devices import check_cuda, cuda_missing
    from ..errors import BackendError

    check_cuda(names, backends)
    why = cuda_missing({"torch"})
    if why is not None:
        raise BackendError(
            f"--device cuda: no CUDA here to measure the roofline: {why}",
            hint="run on a machine with an NVIDIA GPU and a CUDA build of torch, "
            "or use --device cpu",
        )


def _seconds(s: float | None) -> str:
    if s is None:
        return ""
    if s < 1e-3:
        return f"{s * 1e6:.0f} µs"
    return f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"


def _megabytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MB"


def render(roofline, measurements, repeat, skipped, console) -> None:
    """The table; ``roofline`` a Roofline, or a bare read bandwidth (bytes/s) for the cpu's."""
    from rich.table import Table

    from .roofline import Roofline, cpu_name

    if not isinstance(roofline, Roofline):
        roofline = Roofline("cpu", cpu_name(), float(roofline))

    singles = [m for m in measurements if m.world_size is None]
    worlds = [m for m in measurements if m.world_size is not None]
    if singles:
        console.print(
            f"{roofline.describe()}; {repeat} timed calls each, after one untimed first call",
            highlight=False,
        )
        table = Table(*_SINGLE_COLUMNS)
        for c in table.columns[2:]:
            c.justify = "right"
        for m in singles:
            if m.median is None:
                table.add_row(m.backend, m.dtype, f"{m.rows:,}", m.status, m.note, *[""] * 4)
                continue
            low, high = m.spread
            ratio = "" if m.peak_bytes is None else f"{m.peak_bytes / m.data_bytes:.2f}"
            table.add_row(
                m.backend,
                m.dtype,
                f"{m.rows:,}",
                _seconds(m.median),
                f"{_seconds(low)} – {_seconds(high)}",
                _seconds(m.compile_seconds),
                _megabytes(m.peak_bytes),
                ratio,
                f"{m.bandwidth_fraction:.1%}" if m.bandwidth_fraction is not None else "",
            )
        console.print(table)
    if worlds:
        render_worlds(worlds, repeat, console)
    if skipped:
        console.print(f"not installed, not timed: {', '.join(skipped)}", highlight=False)


_SINGLE_COLUMNS = (
    "backend",
    "dtype",
    "rows",
    "median",
    "spread (min–max)",
    "compile",
    "peak added",
    "× data",
    "bandwidth",
)


def render_worlds(worlds, repeat, console) -> None:
    """Distributed backends: the time per gradient and the world's start-up, in columns apart."""
    from rich.table import Table

    console.print(
        f"distributed backends: {repeat} world{'s' if repeat != 1 else ''} each (every dtype "
        "in one world); per gradient = the engine's own call (torch: the slowest rank's "
        "forward+backward; JAX: the compiled call, compile apart); start-up = the rest of the "
        "world's wall time (processes, imports, process group, teardown)",
        highlight=False,
    )
    table = Table(
        "backend",
        "world",
        "dtype",
        "rows",
        "per gradient",
        "spread (min–max)",
        "compile",
        "start-up",
        "start-up spread",
    )
    for c in table.columns[1:2] + table.columns[3:]:
        c.justify = "right"
    for m in worlds:
        if m.median is None:
            row = [m.backend, str(m.world_size), m.dtype, f"{m.rows:,}", m.status, m.note]
            table.add_row(*row, "", "", "")
            continue
        low, high = m.spread
        table.add_row(
            m.backend,
            str(m.world_size),
            m.dtype,
            f"{m.rows:,}",
            _seconds(m.median),
            f"{_seconds(low)} – {_seconds(high)}",
            _seconds(m.compile_seconds),
            _seconds(m.startup_median),
            f"{_seconds(min(m.startup_seconds))} – {_seconds(max(m.startup_seconds))}",
        )
    console.print(table)
