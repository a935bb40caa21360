"""The Python API (``gradcmp.compare``) and what the CLI shares with it: from options to a
Report, and from a Report to stdout and files."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .backends import BACKENDS, DEFAULT_BACKENDS, parse_backends
from .backends.devices import MATMUL_PRECISIONS, check_cuda
from .dtypes import parse_dtypes
from .errors import Given, Option, UsageError, spelt_for_api
from .judging import baseline as baseline_module
from .judging.runner import Report, run
from .loading import data as data_module
from .loading import lossfile
from .models import get_model, mlp
from .params import Params
from .problem import Problem

DEFAULT_DTYPES = "float32,float64"


# compare() runs code shared with the command line, whose errors name its flags by default
# (cli.py prints them as they are); an error leaving compare() names its arguments instead.
@spelt_for_api()
def compare(
    data,
    model: str | None = None,
    *,
    loss: str | os.PathLike | None = None,
    params: Mapping[str, object] | Sequence[str] | None = None,
    backends: Sequence[str] | str | None = None,
    dtypes: Sequence[str] | str | None = None,
    target: str = "y",
    strict: bool = False,
    hidden: Sequence[int] | None = None,
    seed: int | None = None,
    timeout: float | None = None,
    accept: float | None = None,
    device: str = "cpu",
    matmul_precision: str = "default",
) -> Report:
    """Compute loss and gradient with each backend and hold them against the exact reference.

    Args:
        data: a CSV path, or an ``(X, y)`` pair of arrays (X of shape (n, d) or (n,)).
        model: a built-in model name (``gradcmp models``); default ``linear``.
        loss: instead of ``model``, a loss file (docs/design.md, "Loss files").
        params: initial values, ``{"theta1": 0.5}`` or ``["theta1=0.5"]``; default zeros.
        backends: names (list or comma-separated), or "all"; default the seed's four
            (native, torch-grad, torch-backward, jax-grad), a missing one skipped. A
            backend that fails, or a named one that is missing, sets exit code 3.
        dtypes: ``["float32", "float64"]`` or ``"float32,float64"`` (the default).
        target: the CSV's target column.
        strict: count inconclusive as a failure (``Report.exit_code`` 4).
        hidden, seed: the mlp's hidden sizes and initial-weight seed.
        timeout: seconds each backend call may take; past it, that result is ``failed``.
        accept: for a port (a loss file with loss_torch and loss_jax), the relative
            difference between the sides accepted as intended (still reported); default
            the file's ``ACCEPT``, else 0.
        device: ``"cuda"`` runs every torch and JAX backend on the GPU (one backend:
            ``"torch-grad@cuda"``); the others, and the reference, stay on the CPU.
        matmul_precision: ``"highest"`` turns TF32 off for the GPU backends' float32
            products, ``"tf32"`` allows it; ``"default"`` keeps each framework's own setting.

    Returns:
        The Report: ``.verdict``, ``.results``, ``.exit_code``, ``.to_dict()`` (the JSON report).

    Raises:
        UsageError, InputError: a bad argument or input, the message naming this function's
            arguments (``data=``, ``params=['theta1=x']``), not the command line's flags.
    """
    if isinstance(data, str | os.PathLike):
        dataset_source: str | None = os.fspath(data)
        arrays = None
    elif isinstance(data, tuple | list) and len(data) == 2:
        dataset_source, arrays = None, data
    else:
        raise UsageError("data must be a path or an (X, y) pair of arrays")
    if model is not None and loss is not None:
        raise UsageError("give a model or a loss file, not both")
    # What the command line's types check (click: a flag, a positive finite number of seconds).
    if not isinstance(strict, bool):
        raise UsageError(f"strict={strict!r} is not True or False")
    if timeout is not None and not (
        isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0
    ):
        raise UsageError(f"timeout={timeout!r} is not a positive number of seconds")
    chosen = _model(
        model or "linear",
        None if loss is None else os.fspath(loss),
        {"hidden": hidden, "seed": seed},
        accept,
    )
    return _run(
        dataset_source,
        arrays,
        target,
        chosen,
        _join(backends),
        DEFAULT_DTYPES if dtypes is None else _join(dtypes),
        params or (),
        strict,
        timeout,
        device=device,
        matmul_precision=matmul_precision,
    )


def run_from_options(
    data: str | None = None,
    target: str = "y",
    model: str = "linear",
    backends: str | None = None,
    dtypes: str = DEFAULT_DTYPES,
    params: Sequence[str] = (),
    strict: bool = False,
    baseline: str | None = None,
    loss: str | None = None,
    model_options: Mapping[str, object] | None = None,
    timeout: float | None = None,
    workers: bool = False,
    accept: float | None = None,
    device: str = "cpu",
    matmul_precision: str = "default",
) -> Report:
    chosen = _model(model, loss, model_options or {}, accept)
    report = _run(
        data,
        None,
        target,
        chosen,
        backends,
        dtypes,
        params,
        strict,
        timeout,
        workers,
        device=device,
        matmul_precision=matmul_precision,
    )
    if baseline:
        saved = baseline_module.load(baseline)
        comparison = baseline_module.compare_with(report, saved, baseline)
        report = dataclasses.replace(report, baseline=comparison)
    return report


def _model(model: str, loss: str | None, options: Mapping[str, object], accept=None):
    """The Model to check: a loss file, or a built-in one with its options (mlp's sizes).
    Its errors name options (errors.Option), spelt for the command line or the Python API."""
    given = {k: v for k, v in options.items() if v is not None}
    if accept is not None and not (0.0 <= accept < 1.0):
        raise UsageError(
            (Given("accept", repr(accept), accept), " is not a relative difference in [0, 1)")
        )
    if loss is not None:
        if given:
            raise _mlp_only(next(iter(given)), "a loss file")
        chosen = lossfile.load(loss)
        if accept is not None:
            chosen = dataclasses.replace(chosen, accept=accept)
        return chosen
    if accept is not None:
        raise UsageError(
            (
                Option("accept"),
                " applies to a loss file with two sides (",
                Option("loss"),
                "), not a model",
            )
        )
    chosen = get_model(model)
    if chosen.name == "mlp":
        hidden = given.get("hidden")
        if isinstance(hidden, str):
            try:
                hidden = tuple(int(h) for h in hidden.split(","))
            except ValueError:
                raise UsageError(
                    (Given("hidden", repr(hidden), hidden), " is not a list of sizes"),
                    hint=("write ", Given("hidden", "16,8", (16, 8))),
                ) from None
        return mlp.configure(hidden, given.get("seed"))
    if given:
        raise _mlp_only(next(iter(given)), model)
    return chosen


def _mlp_only(option: str, instead: str) -> UsageError:
    return UsageError(
        (Option(option), " applies to ", Given("model", "mlp", "mlp"), f", not to {instead}")
    )


def _run(
    data,
    arrays,
    target,
    chosen_model,
    backends,
    dtypes,
    params,
    strict,
    timeout=None,
    workers=False,
    device="cpu",
    matmul_precision="default",
) -> Report:
    if matmul_precision not in MATMUL_PRECISIONS:
        raise UsageError(
            (Given("matmul_precision", repr(matmul_precision), matmul_precision), " is unknown"),
            hint=f"choose from {', '.join(MATMUL_PRECISIONS)}",
        )
    given = backends if backends is not None else ",".join(DEFAULT_BACKENDS)
    backend_names = parse_backends(given, device)
    check_cuda(backend_names, BACKENDS)  # one line, exit 3, before any work
    chosen_dtypes = parse_dtypes(dtypes)
    start = time.perf_counter()
    if arrays is not None:
        dataset = data_module.from_arrays(*arrays)
    else:
        dataset = data_module.load(data, target)
    load_seconds = time.perf_counter() - start
    if chosen_model.validate is not None:
        chosen_model.validate(dataset)
    initial = Params.from_arrays(chosen_model.initial_params(dataset))
    problem = Problem(
        chosen_model, dataset, _with_params(initial, params), matmul_precision=matmul_precision
    )
    if chosen_model.source != "built-in" and chosen_model.loss is not None:
        lossfile.preflight(problem)
    report = run(
        problem,
        backend_names,
        chosen_dtypes,
        explicit_backends=backends is not None,
        strict=strict,
        timeout=timeout,
        workers=workers,
    )
    report.timings["load"] = load_seconds
    report.timings["total"] = time.perf_counter() - start
    return report


def _with_params(initial: Params, params) -> Params:
    if isinstance(params, Mapping):
        return initial.with_values(params)
    return initial.with_overrides(list(params))


def _join(names: Sequence[str] | str | None) -> str | None:
    if names is None or isinstance(names, str):
        return names
    return ",".join(names)


def write_outputs(
    report: Report,
    fmt: str,
    output: str | None = None,
    report_dir: str | None = None,
    save_baseline: str | None = None,
    json_detail: str = "full",
    timings: bool = False,
    detail: bool = False,
) -> None:
    """The report in ``fmt`` to stdout (or ``output``), every format into ``report_dir``, the
    JSON report to ``save_baseline``. Files are written atomically: no half-written report.
    ``detail``: the table adds every output (--detail)."""
    from .report import REPORT_FILES, render, show

    for given in (output, save_baseline):
        if given is not None and not given.strip():
            raise UsageError("cannot write a report to ''", hint="give a file name")
    # Everything is rendered before anything is written: a renderer that fails (a bug, exit
    # 70) or a directory that cannot be made (exit 2) leaves no half-written set of reports
    # and no report on stdout that the exit code contradicts.
    files: list[tuple[Path, str]] = []
    if output is not None:
        files.append((Path(output), render(report, fmt, json_detail, timings, detail)))
    if report_dir is not None:
        directory = Path(report_dir)
        files += [
            (directory / filename, render(report, name, json_detail))
            for name, filename in REPORT_FILES.items()
        ]
    if save_baseline is not None:
        files.append((Path(save_baseline), render(report, "json")))
    if report_dir is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot create the report directory {report_dir}: {exc.strerror}"
            ) from None
    for path, text in files:
        write_atomically(path, text)
    if output is None:
        show(report, fmt, sys.stdout, json_detail, timings, detail)


def default_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0666 less the umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, text: str) -> None:
    if not str(path) or str(path) == "." or path.is_dir():
        raise UsageError(f"cannot write a report to {str(path)!r}", hint="give a file name")
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, default_file_mode())  # mkstemp's 0600 is for the temporary only
        os.replace(temporary, path)
    except BaseException as exc:
        if os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write {path}: {exc.strerror}") from None
        raise
