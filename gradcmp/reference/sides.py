"""A port's sides, each held against its own exact semantics (docs/design.md, "Ports").

Every framework side of a loss file (``loss_torch``, ``loss_jax``) is traced and
shadow-evaluated (``shadow``): its own graph, forward and backward, in high precision with
the running error bound. That is the side's reference in each dtype; a backend that ran the
side is judged against it, so a framework kernel that departs from its own graph beyond τ is
a framework bug, while a side that computes another function than its twin is a *port*
difference, found by comparing the sides' references with each other (``port``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import time
from dataclasses import dataclass

import numpy as np

from ..dtypes import FLOAT64, DType
from ..errors import one_line
from ..problem import Problem
from . import highprec
from .values import ReferenceValues, same_inputs, tracked_values

# framework → (module of gradcmp.reference, its shadow function)
TRACERS = {"torch": ("trace_torch", "shadow_torch"), "jax": ("trace_jax", "shadow_jax")}

# Where no side has a high-precision reference, the sides' float64 autodiff values are compared
# with each other without a bound: a relative difference beyond this is not float64 rounding of
# any loss a person would write (it is ~10⁸ float64 ulps), so the port is called different.
FALLBACK_DIFFERENT = 1e-8
# A gradient element is measured against at least this share of the largest gradient element:
# an element that cancels to ~0 is rounding noise in both rows (~1e-16 of the terms).
NOISE_SHARE = 2.0**-13


@dataclass(frozen=True)
class SideReference:
    name: str  # loss_torch | loss_jax
    framework: str
    by_dtype: dict[str, ReferenceValues]  # per dtype the run computes in
    at_float64: ReferenceValues | None  # at the float64 inputs (the port verdict's point)
    graph: object = None  # the ShadowGraph at the float64 inputs
    failure: str = ""  # why the side has no shadow reference ('' when it has one)
    nonfinite: bool = False  # the failure is a NaN or inf the side's own program makes
    seconds: float = 0.0
    steps: int = 0

    @property
    def method(self) -> str:
        return (
            f"shadow evaluation of {self.name}'s own {self.framework} graph, forward and "
            f"backward ({highprec.PRECISION_BITS}-bit MPFR, running error bound)"
        )


def shadow_sides(
    problem: Problem, dtypes: list[DType], timeout: float | None = None
) -> dict[str, SideReference]:
    """Each framework side's shadow reference in each dtype (and at the float64 inputs).
    Tracing runs the side's own code, so each side is traced in a forked child of its own
    where that is safe (a crash or a hang there fails that side, not the other, nor gradcmp);
    past ``timeout`` seconds it is left and the side has no shadow reference."""
    from ..judging.children import ChildFailed, run_guarded

    sides = {}
    for side in problem.model.sides:
        framework = side.removeprefix("loss_")
        try:
            sides[side] = run_guarded(
                lambda side=side: _portable(_shadow_side(problem, side, dtypes)), timeout
            )
        except ChildFailed as exc:
            sides[side] = SideReference(side, framework, {}, None, failure=f"tracing: {exc}")
    return sides


def _portable(side: SideReference) -> SideReference:
    """What a child sends back: the graph's steps, not its high-precision outputs (those are
    in the ReferenceValues already)."""
    if side.graph is not None:
        side.graph.loss, side.graph.grads = None, {}
    return side


def _shadow_side(problem: Problem, side: str, dtypes: list[DType]) -> SideReference:
    framework = side.removeprefix("loss_")
    start = time.perf_counter()
    function = problem.model.framework_losses[framework]
    by_dtype: dict[str, ReferenceValues] = {}
    at_float64, graph, steps = None, None, 0
    try:
        module_name, shadow_name = TRACERS[framework]
        shadow = getattr(importlib.import_module(f"{__package__}.{module_name}"), shadow_name)
        done: dict[str, ReferenceValues] = {}  # dtype → values; one per distinct inputs
        for dtype in [FLOAT64, *(d for d in dtypes if d != FLOAT64)]:
            same = next((d for d in done if same_inputs(problem, d, dtype.name)), None)
            if same is not None:
                done[dtype.name] = done[same]
            else:
                X, y = problem.inputs(dtype)
                X = np.asarray(X, dtype=np.float64)
                y = np.asarray(y, dtype=np.int64 if y.dtype.kind in "iu" else np.float64)
                params = {
                    k: np.asarray(v, dtype=np.float64)
                    for k, v in problem.params.as_dtype(dtype).items()
                }
                g = shadow(function, params, X, y, side=side, user_file=problem.model.source)
                done[dtype.name] = tracked_values(problem, g.loss, g.grads)
                if dtype == FLOAT64:
                    graph, at_float64, steps = g, done[dtype.name], len(g.steps)
            if dtype in dtypes:
                by_dtype[dtype.name] = done[dtype.name]
    except highprec.NotDifferentiable as exc:  # the tracer's words: "SIDE: op at FILE:LINE …"
        failure = str(exc).removeprefix(f"{side}: ")
        return SideReference(side, framework, {}, None, failure=failure, nonfinite=True)
    except highprec.UnsupportedOperation as exc:
        return SideReference(side, framework, {}, None, failure=f"no shadow evaluation: {exc}")
    except ImportError as exc:
        return SideReference(side, framework, {}, None, failure=f"cannot trace: {exc}")
    except Exception as exc:  # the side's program itself fails: its backends will say where
        return SideReference(side, framework, {}, None, failure=f"tracing: {one_line(exc)}")
    seconds = time.perf_counter() - start
    return SideReference(side, framework, by_dtype, at_float64, graph, seconds=seconds, steps=steps)


def port_of(
    problem: Problem,
    sides: dict[str, SideReference],
    generic: ReferenceValues | None,
):
    """The port verdict of the sides (and of the generic ``loss`` where it has a reference)."""
    from .port import port_verdict, unknown

    names = tuple(sides) + (("loss",) if problem.model.loss is not None else ())
    broken = [s for s in sides.values() if s.failure]
    if problem.model.loss is not None and generic is None:  # the spec has no exact reference
        return unknown(names, "the generic loss has no high-precision reference")
    if not broken:
        references = {name: s.at_float64 for name, s in sides.items()}
        if generic is not None:
            references["loss"] = generic
        graphs = {name: s.graph for name, s in sides.items()}
        return port_verdict(references, graphs, accept=problem.model.accept, rows=problem.data.rows)
    finite = [s.name for s in sides.values() if not s.nonfinite and not s.failure]
    if generic is not None:
        finite.append("loss")
    nonfinite = [s for s in sides.values() if s.nonfinite]
    if nonfinite and finite:  # one side makes a NaN or inf that another does not
        return _one_side_nonfinite(names, nonfinite, finite)
    return unknown(names, "; ".join(f"{s.name}: {s.failure}" for s in broken))


def _one_side_nonfinite(names, nonfinite, finite):
    from .port import Difference, PortVerdict

    bad, good = nonfinite[0], finite[0]
    note = f"{bad.name}: {bad.failure}; {good} is finite there"
    difference = Difference((good, bad.name), math.inf, "loss", math.inf, "")
    return PortVerdict("different", names, (difference,), (), (), note)


def compare_float64_rows(port, problem: Problem, rows: dict[str, tuple[float, dict]]):
    """An ``unknown`` port (some side has no shadow reference) judged from the sides' own
    float64 autodiff results, ``rows``: side → (loss, {element: gradient}). There is no bound,
    so only a difference no float64 rounding explains (``FALLBACK_DIFFERENT``) counts."""
    from .port import Difference, PortVerdict

    if port.verdict != "unknown" or len(rows) < 2:
        return port
    (a, (loss_a, grads_a)), (b, (loss_b, grads_b)) = list(rows.items())[:2]
    loss_rel = _rel(loss_a, loss_b)
    worst, worst_rel = "loss", loss_rel
    # Each element against its tensor's largest value too: an element that cancels to ~0
    # is rounding noise in both rows, in whatever order each summed it.
    scale: dict[str, float] = {}
    for grads in (grads_a, grads_b):
        for k, v in grads.items():
            tensor = k.split("[")[0]
            scale[tensor] = max(scale.get(tensor, 0.0), abs(v) if math.isfinite(v) else 0.0)
    # ... and against a share of the largest gradient of all, for a tensor that is all noise
    # (a scalar whose gradient cancels to 0).
    floor = NOISE_SHARE * max(scale.values(), default=0.0)
    for k in grads_a:
        tensor_scale = max(scale.get(k.split("[")[0], 0.0), floor)
        rel = _rel(grads_a[k], grads_b.get(k, math.nan), tensor_scale)
        if rel > worst_rel or worst == "loss":
            worst, worst_rel = k, rel
    top = max(loss_rel, worst_rel)
    if not top > FALLBACK_DIFFERENT or top <= problem.model.accept:
        note = f"{port.note} (their float64 autodiff results agree to {top:.1e})"
        return dataclasses.replace(port, note=note)
    note = (
        f"{a} and {b} compute different functions: their float64 autodiff differs by "
        f"{top:.1%} (loss rel {loss_rel:.1e}, worst gradient {worst} rel {worst_rel:.1e}); no "
        f"exact reference ({port.note})"
    )
    difference = Difference((a, b), loss_rel, worst, worst_rel, "")
    return PortVerdict("different", port.sides, (difference,), (), (), note)


def _rel(a: float, b: float, floor: float = 0.0) -> float:
    if a == b:
        return 0.0
    if math.isnan(a) or math.isnan(b):
        return math.inf
    scale = max(abs(a), abs(b), floor)
    return abs(a - b) / scale if scale and math.isfinite(scale) else math.inf
