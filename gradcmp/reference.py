"""The truth every result is held against.

For a built-in model the reference is exact: the model's loss and gradient evaluated in
rational arithmetic on exactly the values the backends receive in each dtype (so a float32
result is judged against the exact answer for float32-rounded inputs, and the difference is
the backend's own rounding). Apart from that, the exact answer for the inputs *as written* (the
CSV's decimals, the ``--param`` values) says how much the input rounding itself moved the
answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .dtypes import DTYPES, FLOAT64, DType
from .exact import ExactColumn, ExactData
from .params import element_names
from .problem import Problem

NAME = "exact"


@dataclass(frozen=True)
class ReferenceValues:
    loss: Fraction
    grads: dict[str, Fraction]  # element name → exact value
    # The agreement rule's M (output name → exact) and c (output name → roundings per row);
    # empty for the inputs as written, which no backend receives.
    magnitudes: dict[str, Fraction] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)

    def outputs(self) -> dict[str, Fraction]:
        return {"loss": self.loss, **self.grads}


@dataclass(frozen=True)
class InputRounding:
    """How far rounding the inputs to one dtype moved them and the exact answer."""

    dtype: str
    values: int  # number of input values (X, y and parameters)
    rounded: int  # how many of them this dtype cannot hold exactly
    max_rel: float  # the largest relative rounding of one input value
    # Per output: |exact(rounded inputs) − exact(inputs as written)|, absolute and relative.
    shift_abs: dict[str, float]
    shift_rel: dict[str, float | None]


@dataclass(frozen=True)
class Reference:
    name: str
    method: str
    as_written: ReferenceValues
    by_dtype: dict[str, ReferenceValues]
    rounding: dict[str, InputRounding]
    seconds: float


def compute_reference(problem: Problem, dtypes: list[DType]) -> Reference:
    start = time.perf_counter()
    model, data, params = problem.model, problem.data, problem.params
    by_dtype: dict[str, ReferenceValues] = {}
    for dtype in dtypes:
        same = next((d for d in by_dtype if _same_inputs(problem, d, dtype.name)), None)
        by_dtype[dtype.name] = (
            by_dtype[same]
            if same
            else _evaluate(problem, params.exact_as_dtype(dtype), _exact_data(problem, dtype))
        )

    written_is_float64 = not data.decimal_cells and params.exact == params.exact_as_dtype(FLOAT64)
    if written_is_float64 and FLOAT64.name in by_dtype:
        as_written = by_dtype[FLOAT64.name]
    elif written_is_float64:
        as_written = _evaluate(problem, params.exact, _exact_data(problem, FLOAT64), False)
    else:
        columns, target = data.exact_columns()
        as_written = _evaluate(
            problem,
            params.exact,
            ExactData(
                tuple(ExactColumn.from_fractions(c) for c in columns),
                ExactColumn.from_fractions(target),
            ),
            with_bounds=False,
        )
    rounding = {d.name: _rounding(problem, d, as_written, by_dtype[d.name]) for d in dtypes}
    return Reference(
        name=NAME,
        method=model.reference_method,
        as_written=as_written,
        by_dtype=by_dtype,
        rounding=rounding,
        seconds=time.perf_counter() - start,
    )


def _exact_data(problem: Problem, dtype: DType) -> ExactData:
    X, y = problem.inputs(dtype)
    return ExactData(
        tuple(ExactColumn.from_floats(X[:, j]) for j in range(X.shape[1])),
        ExactColumn.from_floats(y),
    )


def _evaluate(
    problem: Problem, params: dict, data: ExactData, with_bounds: bool = True
) -> ReferenceValues:
    model = problem.model
    shapes = {k: v.shape for k, v in problem.params.values.items()}

    def flat(per_param: dict) -> dict:
        return {
            element: value
            for name, values in per_param.items()
            for element, value in zip(element_names(name, shapes[name]), values)
        }

    loss, grads = model.exact(params, data)
    if not with_bounds:
        return ReferenceValues(loss, flat(grads))
    loss_magnitude, grad_magnitudes = model.magnitudes(params, data)
    depth = model.rounding_depth(problem.data.features)
    depths = {"loss": depth["loss"], **flat({k: [depth[k]] * len(v) for k, v in grads.items()})}
    return ReferenceValues(
        loss, flat(grads), {"loss": loss_magnitude, **flat(grad_magnitudes)}, depths
    )


def _same_inputs(problem: Problem, a: str, b: str) -> bool:
    """Whether dtypes ``a`` and ``b`` receive the same values (then one reference serves both)."""
    (Xa, ya), (Xb, yb) = (problem.inputs(DTYPES[d]) for d in (a, b))
    pa, pb = (problem.params.as_dtype(DTYPES[d]) for d in (a, b))
    return (
        np.array_equal(Xa.astype(np.float64), Xb.astype(np.float64))
        and np.array_equal(ya.astype(np.float64), yb.astype(np.float64))
        and all(np.array_equal(pa[k].astype(np.float64), pb[k].astype(np.float64)) for k in pa)
    )


def _rounding(
    problem: Problem, dtype: DType, as_written: ReferenceValues, received: ReferenceValues
) -> InputRounding:
    data, params = problem.data, problem.params
    X, y = problem.inputs(dtype)
    # Rounding float64 → dtype, measured in float64 (plenty for a report of its size) ...
    pairs = [(X, data.X), (y, data.y)] + [
        (params.as_dtype(dtype)[k], params.values[k]) for k in params.values
    ]
    rounded_mask = [r.astype(np.float64) != v for r, v in pairs]
    rel = [
        np.abs(r.astype(np.float64) - v)[m] / np.abs(v)[m] for (r, v), m in zip(pairs, rounded_mask)
    ]
    rounded = sum(int(m.sum()) for m in rounded_mask)
    max_rel = max((float(r.max()) for r in rel if r.size), default=0.0)
    # ... plus the decimals that float64 itself could not hold (exact, from the text). Such a
    # value is rounded in every dtype; count it here unless the mask above already did.
    written = [
        (
            exact,
            data.y[row] if column == data.target else data.X[row, data.feature_names.index(column)],
        )
        for (row, column), exact in data.decimal_cells.items()
    ] + [
        (exact, value)
        for k, exact_values in params.exact.items()
        for exact, value in zip(exact_values, params.values[k].ravel().tolist())
        if Fraction(value) != exact
    ]
    for exact, value in written:
        received_value = float(dtype.round(value))
        max_rel = max(max_rel, float(abs(Fraction(received_value) - exact) / abs(exact)))
        rounded += int(received_value == float(value))
    values = X.size + y.size + sum(v.size for v in params.values.values())
    shift_abs, shift_rel = {}, {}
    truth = as_written.outputs()
    for output, value in received.outputs().items():
        diff = abs(value - truth[output])
        shift_abs[output] = float(diff)
        shift_rel[output] = float(diff / abs(truth[output])) if truth[output] else None
    return InputRounding(dtype.name, values, rounded, max_rel, shift_abs, shift_rel)
