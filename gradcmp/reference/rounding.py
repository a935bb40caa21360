"""How far rounding the inputs to a dtype moved them, and the exact answer (the
``input rounding`` lines of the report)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..dtypes import DType
from ..judging.agreement import to_float
from ..loading.pages import release
from ..problem import Problem
from .exact import CHUNK_ROWS
from .values import ReferenceValues


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


def _decimal_mask(data, name: str):
    """``mask(start, stop)``: which rows of column ``name`` hold a decimal float64 rounds
    (measured against the written value apart), or None where there is none."""
    rows = {row for (row, column) in data.decimal_cells if column == name}
    if not rows and data.decimals is None:
        return None

    def mask(start: int, stop: int) -> np.ndarray:
        stop = min(stop, data.rows)
        inside = np.zeros(stop - start, dtype=bool)
        if data.decimals is not None:
            inside[data.decimals.for_column(name, start, stop)[0]] = True
        for row in rows:
            if start <= row < stop:
                inside[row - start] = True
        return inside

    return mask


def _decimal_rounding(problem: Problem, dtype: DType) -> tuple[int, float]:
    """For the C reader's decimals (millions, in arrays): how many there are (each is rounded
    in every dtype; the float64 → dtype mask above leaves them out), and the largest relative
    rounding |received − written|/|written|.

    The largest is exact: an estimate in extended precision (the written value s·10**e to
    2**-64 relative) ranks every cell, and the cells within the estimate's error of the top
    are compared as Fractions.
    """
    data, decimals = problem.data, problem.data.decimals
    extended = np.longdouble
    powers = [extended(1)]
    for _ in range(27):  # the C reader keeps decimals with |exponent| ≤ 27
        powers.append(powers[-1] * extended(10))  # exact: 10**27 has a 63-bit odd part
    powers = np.array(powers, dtype=extended)
    parts = [(name, start) for name in decimals.header for start in range(0, data.rows, CHUNK_ROWS)]

    def part(name: str, start: int):
        """(float64 values, received values, significands, exponents, estimated relative
        roundings) of column ``name``'s decimals in rows [start, start + CHUNK_ROWS)."""
        rows, s, e = decimals.for_column(name, start, start + CHUNK_ROWS)
        column = data.y if name == data.target else data.X[:, data.feature_names.index(name)]
        values = np.asarray(column[start : start + CHUNK_ROWS])[rows]
        with np.errstate(over="ignore"):
            received = dtype.round(values).astype(np.float64)
        e = e.astype(np.int64)
        written = np.where(
            e >= 0, s.astype(extended) * powers[np.abs(e)], s.astype(extended) / powers[np.abs(e)]
        )
        estimate = np.abs(received.astype(extended) - written) / np.abs(written)
        return values, received, s, e, estimate

    not_counted, top = 0, extended(0)
    for name, start in parts:
        values, received, _, _, estimate = part(name, start)
        not_counted += len(values)
        if estimate.size:
            top = max(top, estimate.max())
    precise = np.finfo(extended).nmant >= 63
    threshold = top - extended(2.0**-60) if precise else extended(-np.inf)

    largest = Fraction(0)
    for name, start in parts:  # the cells that may hold the largest, exactly
        _, received, s, e, estimate = part(name, start)
        for i in np.flatnonzero(estimate >= threshold):
            exact = Fraction(int(s[i])) * Fraction(10) ** int(e[i])
            largest = max(largest, abs(Fraction(float(received[i])) - exact) / abs(exact))
    return not_counted, to_float(largest)


def rounding(
    problem: Problem, dtype: DType, as_written: ReferenceValues, received: ReferenceValues
) -> InputRounding:
    data, params = problem.data, problem.params
    X, y = problem.inputs(dtype)
    # Rounding float64 → dtype, measured in float64 (plenty for a report of its size), for
    # the values written as float64 ones; the decimals float64 itself rounds are measured
    # against what was written, exactly, below.
    columns = [
        (X[:, j], data.X[:, j], _decimal_mask(data, name))
        for j, name in enumerate(data.feature_names)
    ] + [(y, data.y, _decimal_mask(data, data.target))]
    rounded, max_rel = 0, 0.0
    for received_values, given, is_decimal in columns:  # in parts: no full-size temporaries
        for start in range(0, given.size, CHUNK_ROWS):
            r = received_values[start : start + CHUNK_ROWS].astype(np.float64)
            v = np.asarray(given[start : start + CHUNK_ROWS])
            moved = r != v
            if is_decimal is not None:
                moved &= ~is_decimal(start, start + CHUNK_ROWS)
            if moved.any():
                rounded += int(moved.sum())
                max_rel = max(max_rel, float((np.abs(r - v)[moved] / np.abs(v)[moved]).max()))
            release(v)  # a memory-mapped master's pages (pages.py)
    _, params_rounded, params_rel = params.rounding(dtype)  # against what was written
    rounded, max_rel = rounded + params_rounded, max(max_rel, params_rel)
    # ... plus the decimals that float64 itself could not hold (exact, from the text). Such a
    # value is rounded in every dtype; count it here unless the mask above already did.
    written = [
        (
            exact,
            data.y[row] if column == data.target else data.X[row, data.feature_names.index(column)],
        )
        for (row, column), exact in data.decimal_cells.items()
    ]
    for exact, value in written:
        received_value = float(dtype.round(value))
        if math.isfinite(received_value):
            rel = abs(Fraction(received_value) - exact) / abs(exact)
            max_rel = max(max_rel, to_float(rel))
        rounded += 1
    if data.decimals is not None:
        more, largest = _decimal_rounding(problem, dtype)
        rounded, max_rel = rounded + more, max(max_rel, largest)
    values = X.size + y.size + sum(v.size for v in params.values.values())
    shift_abs, shift_rel = _shifts_of_arrays(as_written, received)
    return InputRounding(dtype.name, values, rounded, max_rel, shift_abs, shift_rel)


# References with more outputs than this have their shifts measured at array speed.
ARRAY_THRESHOLD = 256


def _shifts_of_arrays(as_written: ReferenceValues, received: ReferenceValues):
    """(shift_abs, shift_rel) per output: where both references are arrays (values.py), the
    difference of each pair of 200-bit values in MPFR at 4 × their precision, rounded once
    more to float64 (within an ulp of the exact figure); elsewhere ``_shifts``."""
    A, B = received.arrays, as_written.arrays
    if received is as_written and A is not None:  # the inputs as written are this dtype's
        zero = (A.hi == 0) & A.plain  # plain at hi = 0: exactly 0
        names = A.names
        return dict.fromkeys(names, 0.0), dict(
            zip(names, [None if z else 0.0 for z in zero.tolist()])
        )
    if A is None or B is None or len(A) <= ARRAY_THRESHOLD or A.names != B.names:
        return _shifts(as_written, received)
    import gmpy2

    from .highprec import PRECISION_BITS

    previous = gmpy2.get_context()
    gmpy2.set_context(gmpy2.context(precision=4 * PRECISION_BITS))
    try:
        with np.errstate(all="ignore"):
            diff = np.abs(A.objects - B.objects)
            shift = diff.astype(np.float64)
            rel = (diff / np.abs(B.objects)).astype(np.float64)
    finally:
        gmpy2.set_context(previous)
    zero = (B.hi == 0) & B.plain
    return dict(zip(A.names, shift.tolist())), dict(
        zip(A.names, [None if z else r for z, r in zip(zero.tolist(), rel.tolist())])
    )


def _shifts(as_written: ReferenceValues, received: ReferenceValues):
    shift_abs, shift_rel = {}, {}
    truth = as_written.outputs()
    for output, value in received.outputs().items():
        if received is as_written:  # the inputs as written are this dtype's: no shift
            shift_abs[output] = 0.0
            shift_rel[output] = 0.0 if truth[output] else None
            continue
        diff = abs(value - truth[output])
        shift_abs[output] = to_float(diff)
        shift_rel[output] = to_float(diff / abs(truth[output])) if truth[output] else None
    return shift_abs, shift_rel
