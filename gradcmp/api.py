"""From options (CLI or Python) to a Report, and from a Report to a file or stdout."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from . import data as data_module
from .backends import BACKENDS, parse_backends
from .dtypes import parse_dtypes
from .models import get_model
from .params import Params
from .problem import Problem
from .runner import Report, run


def run_from_options(
    data: str | None = None,
    target: str = "y",
    model: str = "linear",
    backends: str | None = None,
    dtypes: str = "float32,float64",
    params: Sequence[str] = (),
) -> Report:
    # Parse every option before reading data, so a typo is reported before any slow work.
    chosen_model = get_model(model)
    backend_names = parse_backends(backends) if backends else list(BACKENDS)
    chosen_dtypes = parse_dtypes(dtypes)
    start = time.perf_counter()
    dataset = data_module.load(data, target)
    load_seconds = time.perf_counter() - start
    initial = Params.from_arrays(chosen_model.initial_params(dataset.features))
    problem = Problem(chosen_model, dataset, initial.with_overrides(params))
    report = run(problem, backend_names, chosen_dtypes, explicit_backends=backends is not None)
    report.timings["load"] = load_seconds
    return report


def write_report(report: Report, output_format: str, output: str | None) -> None:
    """Render ``report`` to stdout, or atomically to ``output`` (no half-written file)."""
    if output_format == "json":
        from .report.json import render

        text = render(report)
        if output is None:
            sys.stdout.write(text)
        else:
            write_atomically(Path(output), text)
        return
    from .report import table
    from .report.table import console_for

    if output is None:
        table.render(report, console_for(sys.stdout))
        return
    import io

    buffer = io.StringIO()
    table.render(report, console_for(buffer, colour=False))
    write_atomically(Path(output), buffer.getvalue())


def write_atomically(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
