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

At array speed (``running_bounds``, ``measure_arrays``): for a high-precision reference with
many outputs, a float64 pre-check decides every output whose error is clearly inside or
clearly outside τ at once, from the reference's limbs hi + lo (values.py, ``OutputArrays``)
and a rigorous bound on the pre-check's own rounding; only the outputs near the bound (and
non-finite, tiny or huge ones) are measured exactly. The verdicts are the exact ones; the
numbers of a pre-checked output are within 2**-49 of the exact ones, relatively (``bound``
and ``magnitude`` identical).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ..dtypes import DType

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


def worst_output(errors: Mapping[str, Error], outputs: list[str]) -> str:
    """The output among ``outputs`` with the largest ratio (a non-finite one first)."""
    found = _on_columns(errors, outputs, "ratio", nonfinite_first=True)
    if found is not None:
        return found
    return max(outputs, key=lambda k: (not math.isfinite(errors[k].abs), errors[k].ratio))


def _largest(errors: Mapping[str, Error], field: str) -> tuple[str, Error]:
    """``max(errors.items())`` by ``field``: the first output with the largest one."""
    found = _on_columns(errors, None, field, nonfinite_first=False)
    if found is not None:
        return found, errors[found]
    return max(errors.items(), key=lambda item: getattr(item[1], field))


def _beyond_range(errors: Mapping[str, Error]) -> list[str]:
    """The outputs whose exact value is beyond the dtype's range (an ErrorTable's columns say
    it at once)."""
    beyond_range = getattr(errors, "beyond_range", None)
    if beyond_range is not None:
        return beyond_range()
    return [name for name, e in errors.items() if e.out_of_range]


def _on_columns(errors, outputs, field: str, nonfinite_first: bool) -> str | None:
    """The answer of an ErrorTable (error_table.py: it keeps the errors as columns and
    answers these questions there), else None."""
    largest = getattr(errors, "largest", None)
    return largest(outputs, field, nonfinite_first) if largest is not None else None


def verdict_of(errors: dict[str, Error]) -> str:
    return worst(e.verdict for e in errors.values())


def explain(
    errors: dict[str, Error],
    reference: dict[str, Fraction],
    dtype: DType,
    rows: int,
    verdict: str | None = None,
):
    """One line saying why a result is not ``agree`` (empty for agree); ``verdict``: the
    errors' verdict where the caller knows it already."""
    verdict = verdict or verdict_of(errors)
    if verdict == DISAGREE:
        name, e = _largest(errors, "ratio")
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
        beyond = _beyond_range(errors)
        if beyond:
            return (
                f"the exact {', '.join(beyond)} {'is' if len(beyond) == 1 else 'are'} beyond "
                f"{dtype.name}'s range: the infinity returned is its correct rounding, and "
                "nothing more can be checked"
            )
        name, e = _largest(errors, "resolution")
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


# --- At array speed -------------------------------------------------------------------------

VERDICT_CODES = (AGREE, DISAGREE, INCONCLUSIVE)  # the codes measure_arrays returns: 0, 1, 2
_U = 2.0**-53  # float64's unit roundoff: the pre-check's own arithmetic
_MARGIN = 2.0**-50  # what a decision keeps clear of τ (and of the resolution limit)
_TINY, _HUGE = 2.0**-1000, 2.0**1000  # numbers outside are left to the exact measure
# Where the reference's limbs are exact pictures of its values (reference/values.py explains).
LIMB_RANGE = 2.0**600


def running_bounds(
    dtype: DType, coefficient: np.ndarray, underflows: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``running_bound`` for arrays: (τ as float64, where that float is ``to_float`` of the
    exact τ). e·u = ldexp(e, −p) and f·η = ldexp(f, emin) are exact where scaling them back
    gives e and f again (no underflow); their sum is rounded once and doubled exactly, so τ is
    then the correctly rounded exact τ. Elsewhere (no bound, an underflow, an overflow) the
    exact ``running_bound`` decides."""
    with np.errstate(all="ignore"):
        a = np.ldexp(coefficient, -dtype.precision)
        b = np.ldexp(underflows, dtype.min_exponent)
        tau = RUNNING_BOUND_FACTOR * (a + b)
        ok = (
            np.isfinite(coefficient)
            & np.isfinite(underflows)
            & (np.ldexp(a, dtype.precision) == coefficient)
            & (np.ldexp(b, -dtype.min_exponent) == underflows)
            & np.isfinite(tau)
        )
    return tau, ok


def measure_arrays(
    value: np.ndarray,
    hi: np.ndarray,
    lo: np.ndarray,
    plain: np.ndarray,
    magnitude: np.ndarray,
    tau: np.ndarray,
    tau_ok: np.ndarray,
    dtype: DType,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """``measure`` for every output at once, where float64 decides it: (clear, verdict code,
    (abs, rel, ulp, ratio, resolution)). ``clear`` is False where the exact ``measure`` must
    decide; elsewhere the code is ``Error.verdict``'s (an index into VERDICT_CODES), and the
    numbers are within 2**-49 of ``measure``'s, relatively.

    The reference r is hi + lo + δ with |δ| ≤ 2**-53·|lo| where ``plain`` (values.py). The
    error E = |v − r| is computed as e = |fl(fl(v − hi) − lo)|: each subtraction errs by at
    most 2**-53 of its result (round to nearest; exact where the result is subnormal), so
    |E − e| ≤ 2**-53·(|v − hi| + e + |lo|) + |δ| ≤ s = 2**-52·(|d1| + e + |lo|), the factor 2
    covering the rounding of s itself. Clear agree: e + s ≤ τ·(1 − 2**-50); clear disagree:
    e − s ≥ τ·(1 + 2**-50) — the margin covers the roundings of these tests and of τ (the
    correctly rounded exact τ, ``running_bounds``), and keeps the float ratio on its side of 1.
    The resolution test is clear where τ/M is more than 2**-48 from 1/100. Only outputs with
    s ≤ 2**-50·e are pre-checked (e's own accuracy; e = 0 exactly where s = 0: v = r), and
    only where every number lies in [2**-1000, 2**1000] or is an exact 0 (no overflow, no
    subnormal)."""
    value = np.asarray(value, dtype=np.float64)
    with np.errstate(all="ignore"):
        d1 = value - hi
        e = np.abs(d1 - lo)
        slack = 2.0**-52 * (np.abs(d1) + e + np.abs(lo))
        zero = e == 0  # then slack is 0 too (below): v = r exactly
        ok = (
            plain
            & tau_ok
            & np.isfinite(value)
            & (np.abs(value) <= LIMB_RANGE)
            & (slack <= 2.0**-50 * e)
            & ((tau > 0) | zero)
        )
        agree = (e + slack) <= tau * (1 - _MARGIN)
        disagree = (e - slack) >= tau * (1 + _MARGIN)
        ok &= agree | disagree
        # ulp(r) = 2**k, k from r's binary exponent: hi's, one less where hi is a power of two
        # and r lies below it (lo of the other sign; lo = 0 means r = hi); 0 has emin's.
        mantissa, exponent = np.frexp(hi)
        below = (np.abs(mantissa) == 0.5) & (np.sign(lo) == -np.sign(hi)) & (lo != 0)
        floor_log2 = np.where(hi == 0, dtype.min_exponent, exponent - 1 - below)
        k = np.maximum(floor_log2, dtype.min_exponent) - dtype.precision + 1
        ulp = np.ldexp(e, -k)
        rel = np.where(hi == 0, np.where(zero, 0.0, np.inf), e / np.abs(hi))
        ratio = np.where(zero, 0.0, e / tau)
        resolution = np.where(magnitude == 0, 0.0, tau / magnitude)
        for x in (e, ulp, ratio):
            ok &= zero | ((x >= _TINY) & (x <= _HUGE))
        ok &= zero | ((hi == 0) & (rel == np.inf)) | ((rel >= _TINY) & (rel <= _HUGE))
        ok &= ((resolution == 0) & ((magnitude == 0) | (tau == 0))) | (
            (resolution >= _TINY) & (resolution <= _HUGE)
        )
        beyond = resolution > _LIMIT * (1 + 4 * _MARGIN)
        ok &= beyond | (resolution < _LIMIT * (1 - 4 * _MARGIN))
    code = np.where(disagree & ~zero, 1, np.where(beyond, 2, 0))
    return ok, code, (e, rel, ulp, ratio, resolution)
