"""How far a backend's number is from the exact reference: absolute, relative, in ULPs.

Every difference is computed exactly (``Fraction(value) - reference``) and rounded once, so
the error of a correctly rounded result is reported as at most 0.5 ULP, never as noise of
the subtraction. ULPs are those of the dtype the backend computed in: the seed's float32
gradient −20.500001907348633 is 1 float32 ULP from −20.5 (in float64 ULPs it would be 2**29).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from .dtypes import DType

INF = float("inf")


@dataclass(frozen=True)
class Error:
    """``abs`` = |v − r|; ``rel`` = |v − r| / |r| (``inf`` when r = 0 ≠ v, 0 when both are 0);
    ``ulp`` = |v − r| / ulp(r), the spacing of the backend's dtype at the reference r."""

    abs: float
    rel: float
    ulp: float


def measure(value: float, reference: Fraction, dtype: DType) -> Error:
    if not math.isfinite(value):
        return Error(INF, INF, INF)
    diff = abs(Fraction(value) - reference)
    if not diff:
        return Error(0.0, 0.0, 0.0)
    rel = _to_float(diff / abs(reference)) if reference else INF
    return Error(_to_float(diff), rel, _to_float(diff / dtype.ulp(reference)))


def _to_float(x: Fraction) -> float:
    try:
        return float(x)  # correctly rounded
    except OverflowError:
        return INF
