"""Run every backend × dtype on a Problem and hold each result against the reference."""

from __future__ import annotations

import dataclasses
import math
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
    gamma,
    measure,
    to_float,
    verdict_of,
    worst,
)
from .backends import BACKENDS, missing_modules
from .distributed.consensus import rank_status
from .dtypes import DTYPES, DType
from .errors import (
    EXIT_AGREE,
    EXIT_BACKEND,
    EXIT_DISAGREE,
    EXIT_INCONCLUSIVE,
)
from .execute import (
    FAILED,
    OK,
    SKIPPED,
    Outcome,
    execute,
    finish_world,
    one_line_of,
    start_world,
)
from .problem import Problem
from .reference.bug_kinds import bug_kind
from .reference.compute import Reference, compute_reference, out_of_range
from .reference.sides import compare_float64_rows
from .workers import can_fork, framework_of, run_in_workers


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
    reference: str = ""  # what it was judged against: exact, highprec, or a side (loss_jax)
    # A distributed backend's world: size, engine, comm, rows per shard, per-rank status.
    world: dict | None = None


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
        from .report.json import to_dict

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
        environment={**environment.describe(), **from_workers.environment},
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


def judge(
    problem: Problem, reference: Reference, name: str, dtype: DType, outcome: Outcome
) -> Result:
    if outcome.status != OK:
        return Result(name, dtype.name, outcome.status, seconds=outcome.seconds, note=outcome.note)
    output, loss, grads, seconds = outcome.output, outcome.loss, outcome.grads, outcome.seconds
    judged_by, exact = reference.for_side(output.side, dtype.name)
    truth, rows = exact.outputs(), problem.data.rows
    # A hand-derived gradient may come without its loss value: then only gradients count.
    values = {"loss": loss, **grads} if loss is not None else dict(grads)
    zero, magnitudes = Fraction(0), exact.magnitudes
    errors = {
        k: measure(v, truth[k], dtype, magnitudes.get(k, zero), _tau(exact, output, k, dtype, rows))
        for k, v in values.items()
    }
    world = output.world
    if world is not None:  # every rank's gradient against the truth, not rank 0's alone
        def judge_rank(flat: dict[str, float]) -> dict:
            return {
                k: measure(
                    v, truth[k], dtype, magnitudes.get(k, zero), _tau(exact, output, k, dtype, rows)
                )
                for k, v in flat.items()
            }

        world, rank_errors = rank_status(world, grads, outcome.other_ranks, judge_rank)
    notes = list(output.notes)
    non_finite = [k for k, v in values.items() if not math.isfinite(v)]
    if non_finite:
        notes.append(f"non-finite: {', '.join(non_finite)}")
    if output.run_seconds is not None:  # compiled: the call alone, compilation apart
        seconds = output.run_seconds
    verdict, why = verdict_of(errors), explain(errors, truth, dtype, rows)
    if world is not None and (finding := world.get("finding")):
        # Ranks hold different gradients: the run is wrong even where rank 0 is right.
        verdict = DISAGREE
        worst_rank = rank_errors and explain(rank_errors, truth, dtype, rows)
        why = f"{finding}" + (f"; {worst_rank}" if worst_rank else "")
    own_side = reference.sides.get(output.side)
    if own_side is not None and own_side.nonfinite and non_finite:
        # The program itself makes the NaN or inf (its own graph does, exactly): the backend
        # ran it faithfully; the port verdict carries the finding.
        verdict = INCONCLUSIVE
        why = f"{output.side}'s own graph is not finite here ({own_side.failure})"
    nan = [k for k, v in values.items() if math.isnan(v)]
    if verdict == DISAGREE and nan and "overflowed" in why:  # not an overflow: an invalid op
        why = (
            f"{nan[0]} is NaN where the exact value is finite: an invalid operation in {name} "
            "(0/0, 0·∞, ∞ − ∞, 0·log 0)"
        )
    elif verdict == DISAGREE and (kind := bug_kind(values, truth, rows, tol=_tolerance(dtype))):
        why = f"{why} ({kind})"
    if verdict == DISAGREE and judged_by == output.side:
        # Held against its own side's exact graph: not a port difference but a computation
        # that departs from what its graph says (a kernel, or a narrowing cast in the graph).
        why = f"{why}, against {judged_by}'s own graph"
        graph = reference.sides[judged_by].graph
        narrowing = [s for s in graph.steps if s.narrows] if graph is not None else []
        if narrowing and dtype.name == "float64":
            s = narrowing[0]
            code = f" (`{s.code}`)" if s.code else ""
            why += f": it casts to {s.narrows} at {s.where}{code} inside a float64 run"
    if verdict == DISAGREE and name in DERIVATIVE_FREE and (kinks := reference.kinks()):
        # A difference quotient that straddles a kink measures neither one-sided slope: it
        # cannot show a bug there (docs/design.md, "Kinks and ties").
        kink = kinks[0]
        where = f" at {kink.where}" if kink.where else ""
        verdict = INCONCLUSIVE
        why = f"{name} steps across a kink ({kink.kink}{where}); its slope there is no check"
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
        verdict=verdict,
        why=why,
        side=output.side if problem.model.source != "built-in" else "",
        reference=judged_by,
        world=world,
    )


def _tolerance(dtype: DType) -> float:
    """How close to one multiple k of the truth every output must be to name a bug kind: far
    above the dtype's rounding, far below the gaps between the multiples tried."""
    return max(2.0**-20, 16 * float(dtype.unit_roundoff))


# Backends that difference the loss instead of differentiating it.
DERIVATIVE_FREE = ("finite-diff", "complex-step")


def _tau(exact, output, name: str, dtype: DType, rows: int) -> Fraction | None:
    """The rule's τ, or the backend's own (larger) bound where its error is not rounding (for
    finite differences, with the loss's own rounding added through their gains); for a
    distributed backend, plus γ_k·M for the k roundings its reduction adds."""
    tau = exact.bound(name, dtype, rows)
    if tau is not None and output.extra_roundings:
        g = gamma(output.extra_roundings, Fraction(1, 2**dtype.precision))
        magnitude = exact.magnitudes.get(name)
        tau = None if g is None or magnitude is None else tau + g * magnitude
    own = output.bounds.get(name) if output.bounds else None
    if own is None or tau is None or not math.isfinite(own):
        return tau
    own = Fraction(own)
    # A gradient made of loss values (finite differences) carries the loss's own rounding:
    # gain_j × the rule's bound for the loss at the j-th pair of points (backends/base.py).
    for gain, peak in (output.loss_gains or {}).get(name, ()):
        carried = _loss_bound_near(exact, dtype, rows, peak)
        if carried is None or not math.isfinite(gain):
            return None  # no bound for the loss there: nothing is certified
        own += Fraction(gain) * carried
    return max(tau, own)


# Slack on the carried bound: the steps actually taken are within 4·10⁻¹³ of half the pair's
# width, and the bound's own float arithmetic (a square root, a division) rounds.
CARRY_SLACK = 1 + Fraction(1, 2**20)


def _loss_bound_near(exact, dtype: DType, rows: int, peak: float) -> Fraction | None:
    """The rule's bound for the loss at a pair of points θ ± Δ·e_k where the computed loss is
    at most ``peak`` in absolute value, carried from its bound τ and magnitude M at θ.

    The linear model (proven): M at a point is Σ a_i² / 2n = ‖a‖² / 2n, a_i = |θ0| +
    Σ_j |θ1_j·x_ij| + |y_i|. Moving θ_k by Δ raises a_i by at most Δ·|x_ik| (x_i0 = 1), so
    ‖a(θ ± Δ)‖ ≤ ‖a‖ + Δ·‖x_k‖; and the residuals at the two points differ by 2Δ·x_k, so
    2Δ·‖x_k‖ ≤ ‖r₊‖ + ‖r₋‖ ≤ 2·√(2n·F), F the larger exact loss of the pair. Hence √M' ≤
    √M + √F. F itself is the computed F̂ up to the loss's error there, at most γ·M' with γ =
    τ / M (≥ γ_{n−1+c}(u)): √F ≤ √F̂ + √(γ·M'), so √M' ≤ (√M + √F̂) / (1 − √γ), and the
    bound there is τ·M'/M — γ_{n−1+c}(u)·M' for the rounding; the underflow part W·η is scaled
    alike (η = 2⁻¹⁰²²: it matters only on data near the bottom of the range). A pair's points
    can hold a loss 10²⁸ times the one at θ (a step of 6·10⁻⁴ on a θ1 of 10⁻¹¹ with x ~ 10⁴),
    and its error with it: why τ at θ alone is not the bound.

    Any other loss (the high-precision reference's running bound): the same carrying, an
    estimate as that bound is — the magnitude at the points taken as (√M + √|F̂|)² ≥ M + |F̂|,
    what it is at θ plus the size of the loss there. None where there is no bound at θ, M is
    0 (nothing to carry it from) or the carried bound overflows."""
    tau, magnitude = exact.bound("loss", dtype, rows), exact.magnitudes.get("loss")
    if tau is None or not magnitude:
        return None
    gamma_ = to_float(tau / magnitude)
    if gamma_ >= 1:
        return None
    ratio = to_float(Fraction(peak) / magnitude) if math.isfinite(peak) else math.inf
    growth = (1 + math.sqrt(ratio)) ** 2 / (1 - math.sqrt(gamma_)) ** 2
    if not math.isfinite(growth):
        return None
    return tau * Fraction(growth) * CARRY_SLACK
