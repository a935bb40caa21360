"""Run every backend × dtype on a Problem and hold each result against the reference."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from . import environment
from .agreement import (
    DISAGREE,
    INCONCLUSIVE,
    Error,
    explain,
    measure,
    to_float,
    verdict_of,
    worst,
)
from .backends import BACKENDS, missing_modules
from .backends.base import SkipBackend
from .dtypes import DTYPES, DType
from .errors import EXIT_AGREE, EXIT_BACKEND, EXIT_DISAGREE, EXIT_INCONCLUSIVE
from .lossfile import where_in_file
from .params import element_names
from .problem import Problem
from .reference import Reference, compute_reference

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


class OutputError(Exception):
    """A backend returned something other than a finite-shaped loss and gradient."""


@dataclass(frozen=True)
class Result:
    backend: str
    dtype: str
    status: str  # ok | failed | skipped
    loss: float | None = None
    grads: dict[str, float] = field(default_factory=dict)  # element name → value
    errors: dict[str, Error] = field(default_factory=dict)  # output name → error
    seconds: float | None = None
    note: str = ""
    compile_seconds: float | None = None
    verdict: str | None = None  # agree | disagree | inconclusive; None unless status is ok
    why: str = ""  # one line for a verdict other than agree
    side: str = ""  # the loss file's function that ran (loss, loss_torch, grad_native, …)
    missing: bool = False  # skipped because its framework is not installed


@dataclass(frozen=True)
class Report:
    problem: Problem
    dtypes: list[DType]
    backends: list[str]
    explicit_backends: bool  # named with -b: a missing or failed one is an error (exit 3)
    reference: Reference
    results: list[Result]
    timings: dict
    environment: dict
    strict: bool = False  # inconclusive is an error (exit 4), not a warning
    baseline: Any = None  # a baseline.BaselineComparison when run with --baseline

    def to_dict(self) -> dict:
        """The JSON report (DESIGN.md, Contracts) as Python objects."""
        from .report.json import to_dict

        return to_dict(self)

    @property
    def verdict(self) -> str:
        """disagree if any result disagrees, else inconclusive if any is (or none ran), else
        agree. Failed and skipped backends do not vote; they set the exit code instead."""
        verdicts = [r.verdict for r in self.results if r.status == OK]
        return worst(verdicts) if verdicts else INCONCLUSIVE

    @property
    def exit_code(self) -> int:
        if self.verdict == DISAGREE:
            return EXIT_DISAGREE
        # A backend that ran and failed is always an error; one that is not installed only
        # when it was asked for by name.
        if any(r.status == FAILED for r in self.results) or (
            self.explicit_backends and any(r.missing for r in self.results)
        ):
            return EXIT_BACKEND
        if self.strict and self.verdict == INCONCLUSIVE:
            return EXIT_INCONCLUSIVE
        return EXIT_AGREE


def run(
    problem: Problem,
    backends: list[str],
    dtypes: list[DType],
    explicit_backends: bool = False,
    strict: bool = False,
    timeout: float | None = None,
) -> Report:
    timings: dict = {"setup": {}}
    reference = compute_reference(problem, dtypes)
    timings["reference"] = reference.seconds
    results = []
    for name in backends:
        backend = BACKENDS[name]
        missing = missing_modules(backend)
        setup_error = None
        if not missing:
            start = time.perf_counter()
            try:
                backend.setup()
            except Exception as exc:  # a broken install is this backend's failure, not ours
                setup_error = _one_line(exc)
            timings["setup"][name] = time.perf_counter() - start
        for dtype in dtypes:
            if missing:
                note = f"{', '.join(missing)} not installed (see the README's install command)"
                results.append(Result(name, dtype.name, SKIPPED, note=note, missing=True))
            elif setup_error:
                results.append(Result(name, dtype.name, FAILED, note=f"import: {setup_error}"))
            elif dtype.name in reference.unusable:
                note = f"not computed: {reference.unusable[dtype.name]}"
                results.append(Result(name, dtype.name, SKIPPED, note=note))
            elif dtype.name not in backend.dtypes:
                note = f"{name} does not compute in {dtype.name}"
                results.append(Result(name, dtype.name, SKIPPED, note=note))
            else:
                results.append(_run_one(problem, reference, name, dtype, timeout))
    results = _note_jit_versus_eager(results, reference)
    return Report(
        problem=problem,
        dtypes=dtypes,
        backends=backends,
        explicit_backends=explicit_backends,
        reference=reference,
        results=results,
        timings=timings,
        environment=environment.describe(),
        strict=strict,
    )


def _note_jit_versus_eager(results: list[Result], reference: Reference) -> list[Result]:
    """A trap people fall into: expecting jax.jit to reproduce eager JAX bit for bit. Where the
    two differ, say by how much (both are still judged by the same bound)."""
    by_key = {(r.backend, r.dtype): r for r in results if r.status == OK}
    noted = []
    for r in results:
        eager = by_key.get(("jax-grad", r.dtype))
        if r.backend == "jax-jit" and r.status == OK and eager is not None:
            jit_values = {"loss": r.loss, **r.grads}
            eager_values = {"loss": eager.loss, **eager.grads}
            truth, dtype = reference.by_dtype[r.dtype].outputs(), DTYPES[r.dtype]
            moved = {
                k: to_float(abs(Fraction(v) - Fraction(eager_values[k])) / dtype.ulp(truth[k]))
                for k, v in jit_values.items()
                if k in eager_values
                and v != eager_values[k]
                and np.isfinite([v, eager_values[k]]).all()
            }
            if moved:
                worst = max(moved, key=moved.get)
                note = (
                    f"differs from eager jax-grad in {len(moved)} output(s), most in {worst} "
                    f"({moved[worst]:.3g} ulp): XLA fused or reordered operations"
                )
                r = dataclasses.replace(r, note="; ".join(filter(None, [r.note, note])))
        noted.append(r)
    return noted


class BackendTimeout(Exception):
    """A backend ran past --timeout."""


# Threads of backends that timed out and still run. Native code (XLA, BLAS) in them can abort
# the interpreter's shutdown, so the CLI ends the process directly while any is alive.
ABANDONED: list[threading.Thread] = []


def _call(function, timeout: float | None):
    """``function()``, or BackendTimeout after ``timeout`` seconds. A backend that hangs is
    left running in a daemon thread (Python cannot stop a thread) and ends with the process."""
    if timeout is None:
        return function()
    box: dict = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as exc:  # handed back to the calling thread below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name="gradcmp-backend")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        ABANDONED.append(thread)
        raise BackendTimeout(f"timed out after {timeout:g} s (--timeout); the others still ran")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _run_one(
    problem: Problem, reference: Reference, name: str, dtype: DType, timeout: float | None = None
) -> Result:
    start = time.perf_counter()
    try:
        output = _call(lambda: BACKENDS[name].compute(problem, dtype), timeout)
        seconds = time.perf_counter() - start
        loss, grads = _flatten(problem, output.loss, output.grads)
    except SkipBackend as exc:
        return Result(name, dtype.name, SKIPPED, note=str(exc))
    except Exception as exc:  # the backend under test failed; the others still run
        seconds = time.perf_counter() - start
        note = _one_line(exc)
        if problem.model.source != "built-in":  # point into the user's loss file
            where = where_in_file(exc, problem.model.source)
            note = f"{where}: {note}" if ":" in where.removeprefix(problem.model.source) else note
        return Result(name, dtype.name, FAILED, seconds=seconds, note=note)
    exact = reference.by_dtype[dtype.name]
    truth, rows = exact.outputs(), problem.data.rows
    # A hand-derived gradient may come without its loss value: then only gradients count.
    values = {"loss": loss, **grads} if loss is not None else dict(grads)
    errors = {
        k: measure(
            v,
            truth[k],
            dtype,
            exact.magnitudes.get(k, Fraction(0)),
            _tau(exact, output, k, dtype, rows),
        )
        for k, v in values.items()
    }
    notes = list(output.notes)
    non_finite = [k for k, v in values.items() if not np.isfinite(v)]
    if non_finite:
        notes.append(f"non-finite: {', '.join(non_finite)}")
    if output.run_seconds is not None:  # compiled: the call alone, compilation apart
        seconds = output.run_seconds
    return Result(
        name,
        dtype.name,
        OK,
        loss=loss,
        grads=grads,
        errors=errors,
        seconds=seconds,
        note="; ".join(notes),
        compile_seconds=output.compile_seconds,
        verdict=verdict_of(errors),
        why=explain(errors, truth, dtype, rows),
        side=output.side if problem.model.source != "built-in" else "",
    )


def _tau(exact, output, name: str, dtype: DType, rows: int) -> Fraction | None:
    """The rule's τ, or the backend's own (larger) bound where its error is not rounding."""
    tau = exact.bound(name, dtype, rows)
    own = (output.bounds or {}).get(name)
    if own is None or tau is None or not np.isfinite(own):
        return tau
    return max(tau, Fraction(own))


def _flatten(problem: Problem, loss, grads) -> tuple[float | None, dict[str, float]]:
    """Check the shapes a backend returned and flatten to element names → Python floats."""
    loss_array = np.asarray(loss if loss is not None else np.nan)
    if loss_array.size != 1:
        raise OutputError(f"loss has shape {loss_array.shape}, expected a scalar")
    expected = problem.params.values
    if set(grads) != set(expected):
        raise OutputError(f"gradient for {sorted(grads)}, expected {sorted(expected)}")
    flat: dict[str, float] = {}
    for name, value in expected.items():
        g = np.asarray(grads[name])
        if g.shape != value.shape:
            raise OutputError(f"gradient of {name} has shape {g.shape}, expected {value.shape}")
        flat.update(zip(element_names(name, value.shape), g.astype(np.float64).ravel().tolist()))
    return (None if loss is None else float(loss_array.reshape(()))), flat


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    if isinstance(exc, OutputError | BackendTimeout):
        return text[0]
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
