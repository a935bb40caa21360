"""One backend's call on a Problem, before it is judged: run it (under --timeout, what it
prints sent to stderr), check the shapes it returned and flatten them to element names →
floats. A distributed backend computes every dtype in one world (``execute_world``)."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..backends import BACKENDS
from ..backends.base import Output, SkipBackend
from ..backends.distributed import WorldFailed
from ..distributed.consensus import same_values
from ..dtypes import DType
from ..errors import one_line
from ..loading.lossfile import where_in_file
from ..models.base import NoSuchSide
from ..outcomes import FAILED, OK, SKIPPED  # noqa: F401  (re-exported for the runner)
from ..params import element_names
from ..problem import Problem
from .memory import peak_since, resident_bytes_reset
from .timeouts import BackendTimeout, call_with_timeout


class OutputError(Exception):
    """A backend returned something other than a finite-shaped loss and gradient."""


@dataclass(frozen=True)
class Outcome:
    """What one backend call gave, before it is judged: small and picklable (a worker sends
    it back), the backend's arrays already flattened to floats."""

    status: str  # ok | failed | skipped
    seconds: float | None = None
    note: str = ""
    loss: float | None = None
    grads: dict[str, float] = field(default_factory=dict)
    output: Output | None = None  # its notes, side, compile time and own bounds; no arrays
    # A distributed backend: rank → its flattened gradient, for each rank whose gradient is not
    # rank 0's bit for bit (``grads`` is rank 0's).
    other_ranks: dict[int, dict[str, float]] = field(default_factory=dict)
    # How far the call raised its process's resident memory at its peak, in bytes (Linux:
    # the high-water mark, reset before the call); None where it could not be measured.
    peak_bytes: int | None = None


def execute(problem: Problem, name: str, dtype: DType, timeout: float | None) -> Outcome:
    with contextlib.suppress(Exception):  # (the call itself says what is wrong with them)
        problem.inputs(dtype)  # made before the call: that memory is the data's, not the call's
    before = resident_bytes_reset()
    start = time.perf_counter()
    try:
        # What a loss prints goes to stderr: stdout carries the report (JSON, JUnit …).
        with contextlib.redirect_stdout(sys.stderr):
            output = call_with_timeout(lambda: BACKENDS[name].compute(problem, dtype), timeout)
        seconds = time.perf_counter() - start
        outcome = _outcome(problem, output, seconds)
    except (Exception, SystemExit) as exc:  # the backend failed (a loss may even sys.exit)
        outcome = _failure(problem, exc, time.perf_counter() - start)
    return dataclasses.replace(outcome, peak_bytes=peak_since(before))


def start_world(problem: Problem, name: str, dtypes: list[DType], timeout: float | None):
    """A distributed backend's world, started (its ranks import their frameworks while the
    reference is computed); ``finish_world`` collects it."""
    try:
        return BACKENDS[name].start(problem, dtypes, timeout)
    except Exception as exc:  # the launch itself failed
        return exc


def finish_world(problem: Problem, name: str, dtypes: list[DType], world) -> dict[str, Outcome]:
    """The world's outcome per dtype (it ended itself at --timeout)."""
    start = time.perf_counter()
    try:
        if isinstance(world, Exception):
            raise world
        answers = BACKENDS[name].finish(world, dtypes)
    except Exception as exc:  # the launch itself failed
        return {d.name: _failure(problem, exc, time.perf_counter() - start) for d in dtypes}
    outcomes = {}
    for dtype in dtypes:
        answer = answers[dtype.name]
        if isinstance(answer, Exception):
            outcomes[dtype.name] = _failure(problem, answer, None)
            continue
        try:
            outcomes[dtype.name] = _outcome(problem, answer, answer.run_seconds)
        except Exception as exc:
            outcomes[dtype.name] = _failure(problem, exc, answer.run_seconds)
    return outcomes


def _outcome(problem: Problem, output: Output, seconds: float | None) -> Outcome:
    loss, grads = flatten(problem, output.loss, output.grads)
    others = {}
    for rank, rank_grads in enumerate(output.rank_grads[1:], start=1):
        _, flat = flatten(problem, None, rank_grads)
        if not same_values(flat, grads):
            others[rank] = flat
    light = dataclasses.replace(output, loss=None, grads={}, rank_grads=())
    return Outcome(OK, seconds, loss=loss, grads=grads, output=light, other_ranks=others)


def _failure(problem: Problem, exc: BaseException, seconds: float | None) -> Outcome:
    if isinstance(exc, SkipBackend | NoSuchSide):
        return Outcome(SKIPPED, note=str(exc))
    note = one_line_of(exc)
    if problem.model.source != "built-in" and not isinstance(exc, WorldFailed):
        where = where_in_file(exc, problem.model.source)  # point into the user's loss file
        note = f"{where}: {note}" if ":" in where.removeprefix(problem.model.source) else note
    return Outcome(FAILED, seconds=seconds, note=note)


def flatten(problem: Problem, loss, grads) -> tuple[float | None, dict[str, float]]:
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


def one_line_of(exc: BaseException) -> str:
    if isinstance(exc, OutputError | BackendTimeout | WorldFailed):  # gradcmp's own words
        return str(exc).strip().splitlines()[0]
    return one_line(exc)
