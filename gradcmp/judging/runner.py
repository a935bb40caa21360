"""Run every backend × dtype on a Problem and hold each result against the reference."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .. import environment
from ..backends import BACKENDS, missing_modules
from ..dtypes import DTYPES, DType
from ..errors import EXIT_AGREE, EXIT_BACKEND, EXIT_DISAGREE, EXIT_INCONCLUSIVE
from ..problem import Problem
from ..reference.compute import Reference, compute_reference, out_of_range
from ..reference.sides import compare_float64_rows
from .agreement import DISAGREE, INCONCLUSIVE, worst
from .children import can_fork
from .execute import FAILED, OK, SKIPPED, Outcome, execute, finish_world, one_line_of, start_world
from .judge import (  # noqa: F401 (judge's parts, imported from here before judge.py)
    CARRY_SLACK,
    DERIVATIVE_FREE,
    Result,
    _loss_bound_near,
    _note_jit_versus_eager,
    _tau,
    judge,
)
from .workers import framework_of, run_in_workers


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
    # The port verdict (reference/port.py) of a loss file with two or more framework sides.
    port: Any = None

    def to_dict(self) -> dict:
        """The JSON report (docs/design.md, "Contracts") as Python objects."""
        from ..report.json import to_dict

        return to_dict(self)

    @property
    def verdict(self) -> str:
        """disagree if any result disagrees or the port's sides compute different functions,
        else inconclusive if any result is (or none ran), else agree. Failed and skipped
        backends do not vote; they set the exit code instead."""
        verdicts = [r.verdict for r in self.results if r.status == OK]
        if self.port is not None and self.port.fails:
            verdicts.append(DISAGREE)
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
    workers: bool = False,
) -> Report:
    """Every backend × dtype against the reference. With ``workers``, each framework's
    backends run in a forked worker process of their own while the reference is computed
    here (workers.py); otherwise everything runs in this process, one call after another."""
    with full_collections_paused():
        return _run(problem, backends, dtypes, explicit_backends, strict, timeout, workers)


# Inputs (every dtype's X and y) beyond which the framework workers run their calls one at a
# time: a call's working memory (autodiff's intermediates, the framework's copies) is about
# the data's size, two at once twice that (benchmarks/memory.py). Below, the frameworks' own
# memory dominates and the calls overlap as before.
TAKE_TURNS_ABOVE = 32 * 2**20


def _inputs_bytes(problem: Problem, dtypes: list[DType], unusable: dict) -> int:
    arrays = [problem.inputs(d) for d in dtypes if d.name not in unusable]
    return sum(X.nbytes + y.nbytes for X, y in arrays)


# The third threshold during a run: this many young collections before a full one, i.e. none.
FULL_COLLECTIONS_AFTER = 10**9


@contextlib.contextmanager
def full_collections_paused() -> Iterator[None]:
    """Python's cycle collector makes no full collection during the run; its young
    generations collect as before, and its thresholds are the caller's again after.

    A run makes an object or two per output (10⁵ for a 10⁵-parameter model), and each full
    collection they set off walks every object torch and JAX made at import too: a fifth to
    a third of the run's time on the 94k-parameter MLP (benchmarks/gradcheck_mlp.py). Not
    ``gc.freeze``: that also pins garbage not yet collected (a caller's, an earlier run's),
    and a loop of runs would keep all of it."""
    previous = gc.get_threshold()
    gc.set_threshold(previous[0], previous[1], FULL_COLLECTIONS_AFTER)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def _run(problem, backends, dtypes, explicit_backends, strict, timeout, workers) -> Report:
    timings: dict = {"setup": {}, "backends": {}}
    unusable = {d.name: why for d in dtypes if (why := out_of_range(problem, d))}
    missing = {name: missing_modules(BACKENDS[name]) for name in backends}
    calls = [
        (name, dtype.name)
        for name in backends
        if not missing[name]
        for dtype in dtypes
        if dtype.name not in unusable and dtype.name in BACKENDS[name].dtypes
    ]
    worlds = [n for n in backends if hasattr(BACKENDS[n], "finish") and not missing[n]]
    groups: dict[str, list[tuple[str, str]]] = {}
    if workers:
        for call in calls:
            if call[0] in worlds:
                continue
            framework = framework_of(BACKENDS[call[0]])
            if framework is not None and can_fork(framework):
                groups.setdefault(framework, []).append(call)
    forked = {call for group in groups.values() for call in group}
    timings["workers"] = sorted(groups)
    # (out_of_range made every dtype's inputs already: the workers share those pages.)
    box: dict = {}

    def compute_the_reference() -> None:
        box["reference"] = compute_reference(problem, dtypes, unusable, timeout)

    def world_dtypes(name: str) -> list[DType]:
        return [DTYPES[d] for n, d in calls if n == name]

    started = {}
    try:
        # The first world starts now: its ranks import their framework while the reference
        # is computed here. The others start one after another (N ranks each on these cores).
        if worlds:
            started[worlds[0]] = start_world(problem, worlds[0], world_dtypes(worlds[0]), timeout)
        from_workers = run_in_workers(
            groups,
            lambda name: BACKENDS[name].setup(),
            lambda name, dtype: execute(problem, name, DTYPES[dtype], None),
            timeout,
            failed=lambda note: Outcome(FAILED, note=note),
            while_waiting=compute_the_reference,
            take_turns=_inputs_bytes(problem, dtypes, unusable) > TAKE_TURNS_ABOVE,
        )
        from_worlds = {}
        for name in worlds:
            world = started.pop(name, None) or start_world(
                problem, name, world_dtypes(name), timeout
            )
            outcomes = finish_world(problem, name, world_dtypes(name), world)
            from_worlds.update({(name, d): o for d, o in outcomes.items()})
    finally:
        for world in started.values():  # Ctrl-C, or an error here: no rank left behind
            if not isinstance(world, Exception):
                world.end()
    reference = box["reference"]
    timings["reference"] = reference.seconds
    timings["setup"].update(from_workers.setup_seconds)
    setup_errors = dict(from_workers.setup_errors)
    results = []
    for name in backends:
        backend = BACKENDS[name]
        in_process = [c for c in calls if c[0] == name and c not in forked]
        if in_process:
            start = time.perf_counter()
            try:
                backend.setup()
            except Exception as exc:  # a broken install is this backend's failure, not ours
                setup_errors[name] = one_line_of(exc)
            timings["setup"][name] = time.perf_counter() - start
        for dtype in dtypes:
            call = (name, dtype.name)
            if missing[name]:
                needs = ", ".join(missing[name])
                note = f"{needs} not installed (see the README's install command)"
                results.append(Result(name, dtype.name, SKIPPED, note=note, missing=True))
            elif name in setup_errors:
                note = f"import: {setup_errors[name]}"
                results.append(Result(name, dtype.name, FAILED, note=note))
            elif dtype.name in reference.unusable:
                note = f"not computed: {reference.unusable[dtype.name]}"
                results.append(Result(name, dtype.name, SKIPPED, note=note))
            elif dtype.name not in backend.dtypes:
                note = f"{name} does not compute in {dtype.name}"
                results.append(Result(name, dtype.name, SKIPPED, note=note))
            else:
                if call in forked:
                    outcome = from_workers.outcomes[call]
                elif call in from_worlds:
                    outcome = from_worlds[call]
                else:
                    outcome = execute(problem, name, dtype, timeout)
                peaks = timings.setdefault("peak_bytes", {})
                peaks[f"{name}/{dtype.name}"] = outcome.peak_bytes
                results.append(judge(problem, reference, name, dtype, outcome))
    results = _note_jit_versus_eager(results, reference)
    for r in results:
        if r.seconds is not None:
            timings["backends"][f"{r.backend}/{r.dtype}"] = r.seconds
    return Report(
        problem=problem,
        dtypes=dtypes,
        backends=backends,
        explicit_backends=explicit_backends,
        reference=reference,
        results=results,
        timings=timings,
        environment={
            **environment.describe(),
            **from_workers.environment,
            "matmul_precision": problem.matmul_precision,
        },
        strict=strict,
        port=_port(problem, reference, results),
    )


def _port(problem: Problem, reference: Reference, results: list[Result]):
    """The reference's port verdict; where a side had no shadow evaluation (``unknown``), the
    sides' own float64 autodiff rows compared with each other."""
    port = reference.port
    if port is None or port.verdict != "unknown":
        return port
    rows = {}
    for r in results:
        if r.status == OK and r.dtype == "float64" and r.side in port.sides and r.loss is not None:
            rows.setdefault(r.side, (r.loss, r.grads))
    return compare_float64_rows(port, problem, rows)
