"""How far a backend's number is from the exact reference, and whether rounding explains it.

Every difference is computed exactly (``Fraction(value) - reference``) and rounded once, so
the error of a correctly rounded result is reported as at most 0.5 ULP, never as noise of
the subtraction. ULPs are those of the dtype the backend computed in: the seed's float32
gradient −20.500001907348633 is 1 float32 ULP from −20.5 (in float64 ULPs it would be 2**29).

The agreement rule (docs/design.md, "The agreement rule"). Each output is a sum over n rows
of per-row terms, each computed with at most c roundings. For any summation order —
sequential, pairwise, blocked, numpy's, torch's, XLA's — Higham's bound (Accuracy and
Stability of Numerical Algorithms, 2nd ed., §3.1 and §4.2, with Lemma 3.3 to combine the γ's)
gives

    |computed − exact| ≤ τ = γ_{n−1+c}(u) · M + W·η,   γ_m(u) = m·u / (1 − m·u),

where u is the unit roundoff of the dtype used, M is the same sum with every term and factor
replaced by its absolute value, η = 2**emin (the smallest normal number) bounds the absolute
error of one operation whose result or operand underflows — also where it is flushed to zero,
as XLA on CPU does — and W counts such errors, each weighted by how much the operations after
it can amplify it (the model's ``underflow_weights``). τ, the errors and their ratio are all
evaluated exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import NamedTuple

from .dtypes import DType

INF = float("inf")

AGREE, DISAGREE, INCONCLUSIVE = "agree", "disagree", "inconclusive"
# A check whose bound τ exceeds this share of M cannot see a bug that moves an output by less
# than 1 % of its magnitude (a missing row among 100, an n−1 divisor for n ≥ 100): it says so
# instead of passing. float32 crosses it near n = 1.7e5 rows (γ_n(2**-24) ≈ n·6e-8).
RESOLUTION_LIMIT = Fraction(1, 100)
# The same test on a float r, without a Fraction per comparison: r > 1/100 exactly.
_LIMIT = float(RESOLUTION_LIMIT)
_LIMIT_INCLUSIVE = Fraction(_LIMIT) > RESOLUTION_LIMIT  # then r > 1/100 ⟺ r ≥ _LIMIT


def beyond_resolution_limit(resolution: float) -> bool:
    return resolution >= _LIMIT if _LIMIT_INCLUSIVE else resolution > _LIMIT


class Error(NamedTuple):
    """One output's distance from the reference (a NamedTuple: a model with 10⁵ parameters
    makes 10⁵ of them per result).

    ``abs`` = |v − r|; ``rel`` = |v − r| / |r| (``inf`` when r = 0 ≠ v); ``ulp`` = |v − r| /
    ulp(r) in the backend's dtype; ``bound`` = τ; ``ratio`` = |v − r| / τ (≤ 1: rounding
    explains it); ``magnitude`` = M; ``resolution`` = τ / M (0 when M = 0), the smallest
    relative change of the output that the check is sure to see.
    """

    abs: float
    rel: float
    ulp: float
    bound: float
    ratio: float
    magnitude: float
    resolution: float
    # The exact value is beyond the dtype's range and the backend returned the infinity it
    # rounds to: correct, but nothing can be checked.
    out_of_range: bool = False

    @property
    def verdict(self) -> str:
        if self.out_of_range:
            return INCONCLUSIVE
        if self.ratio > 1 or not math.isfinite(self.abs):
            return DISAGREE
        if beyond_resolution_limit(self.resolution):
            return INCONCLUSIVE
        return AGREE


def gamma(m: int, u: Fraction) -> Fraction | None:
    """γ_m(u) = m·u / (1 − m·u), or None (unbounded) when m·u ≥ 1."""
    mu = m * u
    return mu / (1 - mu) if mu < 1 else None


def underflow_unit(dtype: DType) -> Fraction:
    """η: the error of one operation that underflows, gradual or flushed to zero (2**emin)."""
    return Fraction(2) ** dtype.min_exponent


def bound(
    dtype: DType, rows: int, depth: int, magnitude: Fraction, underflow_weight: Fraction
) -> Fraction | None:
    """τ for an output summed over ``rows`` rows with ``depth`` roundings per row (None: ∞)."""
    g = gamma(rows - 1 + depth, Fraction(1, 2**dtype.precision))
    if g is None:
        return None
    return g * magnitude + underflow_weight * underflow_unit(dtype)


# The high-precision reference's running error bound is first order in u; every rounding is
# counted twice to cover the second-order terms and the small differences between how
# frameworks arrange the same operations (e.g. g·2·r or 2·(g·r) in a backward pass).
RUNNING_BOUND_FACTOR = 2


def running_bound(dtype: DType, coefficient: float, underflows: float) -> Fraction | None:
    """τ = 2·(e·u + f·η) from the high-precision reference's coefficients e (roundings) and
    f (underflows, each weighted by what amplifies it).

    Every term is dyadic (floats, u = 2**-p, η = 2**emin), so τ is built with integer shifts
    and one Fraction at the end (a model with 10⁵ parameters asks for 10⁵ of them)."""
    if not (math.isfinite(coefficient) and math.isfinite(underflows)):
        return None
    e_num, e_den = coefficient.as_integer_ratio()  # e_den, f_den: powers of two
    f_num, f_den = underflows.as_integer_ratio()
    e_shift = -(e_den.bit_length() - 1) - dtype.precision  # e·u = e_num·2**e_shift
    f_shift = -(f_den.bit_length() - 1) + dtype.min_exponent  # f·η = f_num·2**f_shift
    low = min(e_shift, f_shift)
    numerator = RUNNING_BOUND_FACTOR * ((e_num << (e_shift - low)) + (f_num << (f_shift - low)))
    if low >= 0:
        return Fraction(numerator << low)
    return Fraction(numerator, 1 << -low)


def measure(
    value: float,
    reference: Fraction,
    dtype: DType,
    magnitude: Fraction = Fraction(0),
    tau: Fraction | None = None,
) -> Error:
    # No bound (τ unknown or infinite): nothing is certified, whatever the magnitude.
    if tau is None:
        resolution = INF
    elif magnitude:
        resolution = _divide(
            tau.numerator * magnitude.denominator, tau.denominator * abs(magnitude.numerator)
        )
    else:
        resolution = 0.0
    bound_float = INF if tau is None else to_float(tau)
    if not math.isfinite(value):
        rounds_to_inf = abs(reference) > dtype.max_value and value == to_float(reference) * INF
        m = to_float(magnitude)
        return Error(INF, INF, INF, bound_float, INF, m, resolution, rounds_to_inf)
    # |value − reference| = N / D exactly, in integers: each figure below is one correctly
    # rounded integer division (no Fraction, no gcd: 10⁵ outputs take a fraction of a second).
    p, q = reference.numerator, reference.denominator
    a, b = value.as_integer_ratio()
    N, D = abs(a * q - p * b), b * q
    if not N:
        return Error(0.0, 0.0, 0.0, bound_float, 0.0, to_float(magnitude), resolution)
    rel = _divide(N * q, D * abs(p)) if p else INF
    # ulp(reference) = 2**k: N / (D·2**k)
    k = dtype.ulp_exponent(reference)
    ulp = _divide(N, D << k) if k >= 0 else _divide(N << -k, D)
    ratio = 0.0 if tau is None else _divide(N * tau.denominator, D * tau.numerator)
    return Error(_divide(N, D), rel, ulp, bound_float, ratio, to_float(magnitude), resolution)


def _divide(numerator: int, denominator: int) -> float:
    """numerator / denominator correctly rounded (Python's int division is); ±inf beyond
    float64's range, inf for a positive numerator over 0."""
    if not denominator:
        return INF
    try:
        return numerator / denominator
    except OverflowError:
        return INF


def worst(verdicts: Iterable[str]) -> str:
    """disagree over inconclusive over agree."""
    seen = set(verdicts)
    return next((v for v in (DISAGREE, INCONCLUSIVE) if v in seen), AGREE)


def worst_output(errors: dict[str, Error], outputs: list[str]) -> str:
    """The output among ``outputs`` with the largest ratio (a non-finite one first)."""
    return max(outputs, key=lambda k: (not math.isfinite(errors[k].abs), errors[k].ratio))


def verdict_of(errors: dict[str, Error]) -> str:
    return worst(e.verdict for e in errors.values())


def explain(errors: dict[str, Error], reference: dict[str, Fraction], dtype: DType, rows: int):
    """One line saying why a result is not ``agree`` (empty for agree)."""
    verdict = verdict_of(errors)
    if verdict == DISAGREE:
        name, e = max(errors.items(), key=lambda item: item[1].ratio)
        if not math.isfinite(e.abs):
            exact = to_float(reference[name])
            where = (
                f"{dtype.name} overflowed although the exact value is in its range"
                if abs(reference[name]) <= dtype.max_value
                else f"the exact value is beyond {dtype.name}'s range"
            )
            return f"{name} is not finite where the exact value is {exact:.6g}: {where}"
        return (
            f"{name} is off by {e.abs:.3g} (rel {e.rel:.2g}), {e.ratio:.3g} × its rounding "
            f"bound {e.bound:.3g}: more than {dtype.name} rounding can explain"
        )
    if verdict == INCONCLUSIVE:
        beyond = [name for name, e in errors.items() if e.out_of_range]
        if beyond:
            return (
                f"the exact {', '.join(beyond)} {'is' if len(beyond) == 1 else 'are'} beyond "
                f"{dtype.name}'s range: the infinity returned is its correct rounding, and "
                "nothing more can be checked"
            )
        name, e = max(errors.items(), key=lambda item: item[1].resolution)
        if not math.isfinite(e.bound):
            return (
                f"no rounding bound for {name} (the reference has none, or it is infinite in "
                f"{dtype.name} on {rows} rows): its error cannot be judged"
            )
        if not math.isfinite(e.resolution):
            share = "unbounded"
        elif e.resolution > 10:
            share = f"{e.resolution:.3g} × its magnitude"
        else:
            share = f"{e.resolution:.2%} of its magnitude"
        return (
            f"the rounding bound of {name} is {share}: in {dtype.name} on {rows} rows a bug "
            "that moves it by less than that cannot be told from rounding"
        )
    return ""


def to_float(x: Fraction) -> float:
    """``x`` correctly rounded to float64; ±inf beyond its range (no OverflowError)."""
    try:
        return float(x)
    except OverflowError:
        return INF if x > 0 else -INF
