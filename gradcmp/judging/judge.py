"""Judging one result: each output against the reference, by the agreement rule (agreement.py),
and the verdict's one line.

A high-precision reference with many outputs is judged at array speed: the float64 pre-check
``agreement.measure_arrays`` decides every output clearly inside or outside τ at once, and only
the others go through the exact ``agreement.measure`` (docs/design.md, "The agreement rule").
Below ``ARRAY_THRESHOLD`` outputs (the built-in models, the golden cases) every output is
measured exactly, so their numbers are bit for bit those of the exact rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..backends.devices import split_device
from ..distributed.consensus import rank_status
from ..dtypes import DTYPES, DType
from ..problem import Problem
from ..reference.bug_kinds import bug_kind
from ..reference.compute import Reference
from .agreement import (
    DISAGREE,
    INCONCLUSIVE,
    VERDICT_CODES,
    Error,
    explain,
    gamma,
    measure,
    measure_arrays,
    running_bounds,
    to_float,
    verdict_of,
    worst,
)
from .error_table import ErrorTable
from .execute import OK, Outcome
from .precision import reduced_precision_note

# Results with more outputs than this are judged at array speed (None: never).
ARRAY_THRESHOLD: int | None = 256


@dataclass(frozen=True)
class Result:
    backend: str
    dtype: str
    status: str  # ok | failed | skipped
    loss: float | None = None
    grads: dict[str, float] = field(default_factory=dict)  # element name → value
    # output name → error (an ErrorTable for many outputs: error_table.py)
    errors: Mapping[str, Error] = field(default_factory=dict)
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
    # Where it computed, and the settings that decide a GPU's float32 products there.
    device: str = "cpu"
    settings: dict | None = None


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
        return Result(
            name,
            dtype.name,
            outcome.status,
            seconds=outcome.seconds,
            note=outcome.note,
            device=split_device(name)[1] or "cpu",
        )
    output, loss, grads, seconds = outcome.output, outcome.loss, outcome.grads, outcome.seconds
    judged_by, exact = reference.for_side(output.side, dtype.name)
    truth, rows = exact.outputs(), problem.data.rows
    # A hand-derived gradient may come without its loss value: then only gradients count.
    values = {"loss": loss, **grads} if loss is not None else dict(grads)
    errors, verdict = measure_outputs(values, exact, output, dtype, rows)
    world = output.world
    if world is not None:  # every rank's gradient against the truth, not rank 0's alone

        def judge_rank(flat: dict[str, float]) -> dict:
            return measure_outputs(flat, exact, output, dtype, rows)[0]

        world, rank_errors = rank_status(world, grads, outcome.other_ranks, judge_rank)
    notes = list(output.notes)
    floats = np.fromiter(values.values(), dtype=np.float64, count=len(values))
    non_finite = _names_where(values, ~np.isfinite(floats))
    if non_finite:
        notes.append(f"non-finite: {', '.join(non_finite)}")
    if output.run_seconds is not None:  # compiled: the call alone, compilation apart
        seconds = output.run_seconds
    verdict = verdict or verdict_of(errors)
    why = explain(errors, truth, dtype, rows, verdict)
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
    nan = _names_where(values, np.isnan(floats))
    if verdict == DISAGREE and nan and "overflowed" in why:  # not an overflow: an invalid op
        why = (
            f"{nan[0]} is NaN where the exact value is finite: an invalid operation in {name} "
            "(0/0, 0·∞, ∞ − ∞, 0·log 0)"
        )
    elif verdict == DISAGREE and (
        kind := bug_kind(values, exact.floats(), rows, tol=_tolerance(dtype))
    ):
        why = f"{why} ({kind})"
    elif (
        reduced := reduced_precision_note(
            errors, dtype, output.device, output.settings, verdict == DISAGREE
        )
    ) is not None:  # a named bug kind comes first: a clean ×k is never TF32
        if verdict == DISAGREE:
            why = f"{why}: {reduced}"
        else:
            notes.append(reduced)
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
        device=output.device,
        settings=dict(output.settings) if output.settings else None,
    )


def measure_outputs(
    values: dict[str, float], exact, output, dtype: DType, rows: int
) -> tuple[Mapping[str, Error], str | None]:
    """Each output's Error against ``exact`` (ReferenceValues), and their verdict where it
    came out of the array path on the way (else None: ``verdict_of`` the errors); on the
    array path the errors are an ErrorTable (one Error made per output asked for)."""
    arrays, zero = exact.arrays, Fraction(0)
    truth, magnitudes = exact.outputs(), exact.magnitudes

    def exactly(k: str) -> Error:
        tau = _tau(exact, output, k, dtype, rows)
        return measure(values[k], truth[k], dtype, magnitudes.get(k, zero), tau)

    if (
        ARRAY_THRESHOLD is None
        or arrays is None
        or len(values) <= ARRAY_THRESHOLD
        or output.extra_roundings  # a distributed reduction's γ_k·M, a backend's own bound:
        or output.bounds  # exact arithmetic on τ (_tau)
    ):
        return {k: exactly(k) for k in values}, None
    names = list(values)
    if names == arrays.names:
        at = slice(None)
    else:
        at = np.fromiter((arrays.index[k] for k in names), dtype=np.intp, count=len(names))
    v = np.fromiter(values.values(), dtype=np.float64, count=len(names))
    magnitude = arrays.magnitude[at]
    tau, tau_ok = running_bounds(dtype, arrays.coefficient[at], arrays.underflow[at])
    clear, code, numbers = measure_arrays(
        v, arrays.hi[at], arrays.lo[at], arrays.plain[at], magnitude, tau, tau_ok, dtype
    )
    abs_, rel, ulp, ratio, resolution = numbers
    measured = {names[i]: exactly(names[i]) for i in np.flatnonzero(~clear)}
    errors = ErrorTable(names, (abs_, rel, ulp, tau, ratio, magnitude, resolution), measured)
    verdicts = [VERDICT_CODES[c] for c in np.unique(code[clear]).tolist()]
    return errors, worst(verdicts + [e.verdict for e in measured.values()])


def _names_where(values: dict[str, float], which: np.ndarray) -> list[str]:
    """The names of the outputs marked in ``which`` (in order), without a loop over all."""
    if not which.any():
        return []
    names = list(values)
    return [names[i] for i in np.flatnonzero(which)]


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
