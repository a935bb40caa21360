"""The truth every result is held against.

For a built-in model the reference is exact: the model's loss and gradient evaluated in
rational arithmetic on exactly the values the backends receive in each dtype (so a float32
result is judged against the exact answer for float32-rounded inputs, and the difference is
the backend's own rounding). Apart from that, the exact answer for the inputs *as written* (the
CSV's decimals, the ``--param`` values) says how much the input rounding itself moved the
answer.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..dtypes import FLOAT64, DType
from ..errors import BackendError, InputError, Option, one_line
from ..problem import Problem
from . import highprec
from .exact import ChunkedExactData, ExactData, ExactSource
from .rounding import InputRounding
from .rounding import rounding as _rounding
from .sides import port_of, shadow_sides
from .values import ReferenceValues, flattener, same_inputs, tracked_values

NAME = "exact"


@dataclass(frozen=True)
class Reference:
    name: str
    method: str
    as_written: ReferenceValues
    by_dtype: dict[str, ReferenceValues]
    rounding: dict[str, InputRounding]
    seconds: float
    # dtype → why no backend can compute in it (an input overflows it)
    unusable: dict[str, str] = field(default_factory=dict)
    # A port's sides, each judged by its own shadow evaluation (sides.py), and their verdict.
    sides: dict = field(default_factory=dict)  # side name → sides.SideReference
    port: object = None  # port.PortVerdict, where the loss file has two or more sides

    def for_side(self, side: str, dtype: str) -> tuple[str, ReferenceValues]:
        """(the reference's name, its values) a result computed by ``side`` is held against:
        that side's own shadow evaluation where it has one, else the run's reference."""
        own = self.sides.get(side)
        if own is not None and dtype in own.by_dtype:
            return side, own.by_dtype[dtype]
        return self.name, self.by_dtype[dtype]

    def kinks(self) -> list:
        """Every step of every side evaluated exactly at a kink or tie."""
        return [step for s in self.sides.values() if s.graph for step in s.graph.kinks()]


def compute_reference(
    problem: Problem,
    dtypes: list[DType],
    unusable: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Reference:
    """The reference for each dtype; ``unusable`` (dtype → why no backend computes in it)
    where the caller has worked it out already. ``timeout`` bounds the tracing of each side
    of a port (it runs the user's code)."""
    with highprec.results_remembered():  # the sides' and the generic loss's work, once
        return _compute_reference(problem, dtypes, unusable, timeout)


def _compute_reference(problem, dtypes, unusable, timeout) -> Reference:
    start = time.perf_counter()
    model, data, params = problem.model, problem.data, problem.params
    if unusable is None:
        unusable = {d.name: why for d in dtypes if (why := out_of_range(problem, d))}
    usable = [d for d in dtypes if d.name not in unusable]
    side_references = shadow_sides(problem, usable, timeout) if model.sides else {}
    if model.loss is None:  # a port file with only its two sides: the first side is the truth
        return reference_from_sides(problem, usable, unusable, side_references, start, timeout)
    if model.exact is not None:
        name, method = NAME, model.reference_method

        def for_dtype(dtype: DType) -> ReferenceValues:
            exact_params = params.exact_as_dtype(dtype)
            return _evaluate_exact(problem, exact_params, _exact_data(problem, dtype))

        def as_written_values() -> ReferenceValues:
            return _evaluate_exact(problem, params.exact, data.exact_data(), with_bounds=False)
    else:
        name, method = HIGHPREC_NAME, HIGHPREC_METHOD

        def for_dtype(dtype: DType) -> ReferenceValues:
            X, y = problem.inputs(dtype)
            return _evaluate_highprec(problem, params.as_dtype(dtype), X, y)

        def as_written_values() -> ReferenceValues:
            columns, target = data.exact_columns()
            exact_params = {
                k: np.array(v, dtype=object).reshape(params.values[k].shape)
                for k, v in params.exact.items()
            }
            X = np.array(columns, dtype=object).T.reshape(data.X.shape)
            y = np.array(target, dtype=object)
            if model.integer_targets:
                y = np.asarray(data.y).astype(np.int64)
            return _evaluate_highprec(problem, exact_params, X, y)

    dtypes = usable
    try:
        by_dtype: dict[str, ReferenceValues] = {}
        for dtype in dtypes:
            same = next((d for d in by_dtype if same_inputs(problem, d, dtype.name)), None)
            by_dtype[dtype.name] = by_dtype[same] if same else for_dtype(dtype)
        written_is_float64 = data.written_in_float64 and params.exact_is_float64
        if written_is_float64 and FLOAT64.name in by_dtype:
            as_written = by_dtype[FLOAT64.name]
        elif written_is_float64:
            as_written = for_dtype(FLOAT64)
        else:
            as_written = as_written_values()
    except highprec.UnsupportedOperation as exc:
        name, method, as_written = _float64_fallback(problem, str(exc))
        by_dtype = {dtype.name: as_written for dtype in dtypes}
    except highprec.NotDifferentiable as exc:
        raise _not_differentiable(problem, str(exc)) from None
    rounding = {d.name: _rounding(problem, d, as_written, by_dtype[d.name]) for d in dtypes}
    generic = None  # the generic loss at the float64 inputs, where the sides are compared
    if side_references and name == HIGHPREC_NAME:
        generic = by_dtype.get(FLOAT64.name) or for_dtype(FLOAT64)
    return Reference(
        name=name,
        method=method,
        as_written=as_written,
        by_dtype=by_dtype,
        rounding=rounding,
        seconds=time.perf_counter() - start,
        unusable=unusable,
        sides=side_references,
        port=port_of(problem, side_references, generic) if side_references else None,
    )


def reference_from_sides(
    problem: Problem,
    dtypes: list[DType],
    unusable: dict[str, str],
    sides: dict,
    start: float,
    timeout: float | None = None,
) -> Reference:
    """The reference of a port file without a generic ``loss``: its first side with a shadow
    reference (each side's results are held against their own side anyway); where no side has
    one, float64 autodiff of the first side, without a bound."""
    first = next((s for s in sides.values() if not s.failure), None)
    if first is not None:
        name, method, by_dtype = first.name, first.method, dict(first.by_dtype)
        as_written = first.at_float64
    elif all(s.nonfinite for s in sides.values()):
        raise _not_differentiable(
            problem, "; ".join(f"{s.name}: {s.failure}" for s in sides.values())
        )
    else:
        why = "; ".join(f"{s.name}: {s.failure}" for s in sides.values())
        name, method, as_written = _fallback_in_child(problem, why, timeout)
        by_dtype = {dtype.name: as_written for dtype in dtypes}
    # The sides' tracers take float64 inputs: there is no exact answer for the inputs as
    # written, so the report counts the rounded inputs but claims no shift of the answer.
    rounding = {
        d.name: dataclasses.replace(
            _rounding(problem, d, as_written, by_dtype[d.name]), shift_abs={}, shift_rel={}
        )
        for d in dtypes
    }
    return Reference(
        name=name,
        method=method,
        as_written=as_written,
        by_dtype=by_dtype,
        rounding=rounding,
        seconds=time.perf_counter() - start,
        unusable=unusable,
        sides=sides,
        port=port_of(problem, sides, None),
    )


def _fallback_in_child(problem: Problem, why: str, timeout: float | None):
    """``_float64_fallback`` of a file's sides, run where a crash or hang of the user's code
    cannot take gradcmp down (a forked child, or a thread under ``timeout``)."""
    from ..judging.children import ChildFailed, run_guarded

    try:
        return run_guarded(lambda: _float64_fallback(problem, why, spec_only=False), timeout)
    except ChildFailed as exc:
        raise BackendError(
            f"no reference: {why}; and float64 autodiff of the sides failed too ({exc})",
            where=problem.model.source,
            hint="each side's program fails here: run it alone to see why",
        ) from None


HIGHPREC_NAME = "highprec"
HIGHPREC_METHOD = (
    f"high-precision autodiff ({highprec.PRECISION_BITS}-bit MPFR) with a running error bound"
)


def _exact_data(problem: Problem, dtype: DType) -> ChunkedExactData:
    # float64 receives the dataset's own values: read them where they are (a memory-mapped
    # file), not from a contiguous copy made only for this.
    X, y = (problem.data.X, problem.data.y) if dtype == FLOAT64 else problem.inputs(dtype)
    return ChunkedExactData([ExactSource(X[:, j]) for j in range(X.shape[1])], ExactSource(y))


def _evaluate_exact(
    problem: Problem, params: dict, data: ExactData, with_bounds: bool = True
) -> ReferenceValues:
    model, flat = problem.model, flattener(problem)
    loss, grads = model.exact(params, data)
    if not with_bounds:
        return ReferenceValues(loss, flat(grads))
    loss_magnitude, grad_magnitudes = model.magnitudes(params, data)
    loss_weight, grad_weights = model.underflow_weights(params, data)
    depth = model.rounding_depth(problem.data.features)
    depths = {"loss": depth["loss"], **flat({k: [depth[k]] * len(v) for k, v in grads.items()})}
    return ReferenceValues(
        loss,
        flat(grads),
        {"loss": loss_magnitude, **flat(grad_magnitudes)},
        depths,
        {"loss": loss_weight, **flat(grad_weights)},
    )


def _evaluate_highprec(problem: Problem, params: dict, X, y) -> ReferenceValues:
    out, grads = highprec.value_and_grad(problem.model.loss, params, X, y)
    return tracked_values(problem, out, grads)


def _not_differentiable(problem: Problem, why: str) -> InputError:
    return InputError(
        f"no reference at these parameters: {why}",
        where=problem.model.source if problem.model.source != "built-in" else problem.data.path,
        hint=(
            "choose parameters where the loss is differentiable (",
            Option("params"),
            ", or PARAMS)",
        ),
    )


def _float64_fallback(
    problem: Problem, why: str, spec_only: bool = True
) -> tuple[str, str, ReferenceValues]:
    """A float64 autodiff reference, for a loss the high-precision reference cannot evaluate.

    It differentiates the generic ``loss`` (the specification, not either side of a port).
    Its own error is unknown, so it carries no bound: results held against it are at best
    inconclusive, and their errors say how far they are from float64 autodiff.
    """
    from ..backends import BACKENDS, missing_modules

    # The specification, not a side: drop the framework's own functions (unless the file has
    # only its sides).
    spec = problem
    if spec_only:
        model = dataclasses.replace(problem.model, framework_losses={})
        spec = Problem(model, problem.data, problem.params)
    failures = []
    for name in ("torch-grad", "jax-grad"):
        if not missing_modules(BACKENDS[name]):
            try:
                output = BACKENDS[name].compute(spec, FLOAT64)
            except Exception as exc:  # the next framework may manage
                failures.append(f"{name}: {one_line(exc)}")
                continue
            values = [np.asarray(output.loss), *map(np.asarray, output.grads.values())]
            if not all(np.isfinite(v).all() for v in values):
                raise _not_differentiable(problem, f"float64 autodiff by {name} gives NaN or inf")
            flat = flattener(problem)
            grads = flat(
                {
                    k: [Fraction(x) for x in np.ravel(np.asarray(v, dtype=np.float64)).tolist()]
                    for k, v in output.grads.items()
                }
            )
            values = ReferenceValues(Fraction(float(np.asarray(output.loss))), grads)
            method = (
                f"float64 autodiff by {name}, no error bound ({why} is beyond the "
                "high-precision reference)"
            )
            return "float64", method, values
    tried = "; ".join(failures) or "neither torch nor jax is installed"
    raise InputError(
        f"no reference: {why} is beyond the high-precision reference, and float64 autodiff "
        f"of the generic loss failed ({tried})",
        where=problem.model.source if problem.model.source != "built-in" else None,
        hint="write loss() with the xp operations listed in docs/ports.md",
    )


def out_of_range(problem: Problem, dtype: DType) -> str:
    """Why ``dtype`` cannot hold the inputs (a value that is finite in float64 overflows it),
    or ''."""
    data = problem.data
    with np.errstate(over="ignore"):
        X, y = problem.inputs(dtype)
        params = problem.params.as_dtype(dtype)
    for label, array, original in [
        *((name, X[:, j], data.X[:, j]) for j, name in enumerate(data.feature_names)),
        (data.target, y, data.y),
        *(
            (f"parameter {k}", v.ravel(), problem.params.values[k].ravel())
            for k, v in params.items()
        ),
    ]:
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            row = "" if label.startswith("parameter") else f" row {bad[0] + 1}"
            return f"{label}{row} = {float(original[bad[0]])!r} overflows {dtype.name}"
    return ""
