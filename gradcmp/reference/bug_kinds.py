"""Naming the likely bug behind a difference, where its pattern is clear.

Many loss bugs scale the whole answer by one constant: a ½ left out of ``½·mean(r²)`` doubles
the loss and every gradient element, a sum where the mean belongs multiplies them by n, the
sample-variance divisor by n/(n−1), a sign error by −1. So when *every* output that differs
is the same multiple k of the truth, k names the bug; a difference that is not one multiple
(an off-by-one that drops a row, a wrong activation) gets no name.

The values may be exact (Fractions: two sides of a port) or a backend's floats in some dtype;
both are compared in float64, which is far finer than ``tol``. ``tol`` (relative) decides
both "this output differs" and "this output is k × the truth": the default 2**-20 (≈1e-6)
is far above float64 and float32 rounding of a well-conditioned output and far below the
smallest factor named here other than n/(n−1), which is only tried while 1/n stays well
above ``tol``. A caller judging bfloat16 or float16 rows passes a larger ``tol``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from ..judging.agreement import to_float

DEFAULT_TOL = 2.0**-20
LARGEST_SHARDS = 8  # integer factors 2..8 are named (shards, steps, heads)
# n/(n−1) is told apart from 1 only while 1/n is this many times tol
BESSEL_MARGIN = 16.0

HALF = "a missing ½ / a doubled term"
SIGN = "a sign flip"
BESSEL = "n−1 instead of n (Bessel's correction / a mean over n−1)"


def bug_kind(
    values: Mapping[str, float | Fraction],
    truth: Mapping[str, Fraction | float],
    rows: int | None = None,
    *,
    tol: float = DEFAULT_TOL,
) -> str:
    """The likely bug when every output of ``values`` that differs from ``truth`` is one
    multiple k of it ("×2: a missing ½ / a doubled term"), else ''.

    Outputs in only one of the two are left out. An output whose truth is 0 but whose value
    is not is no multiple of it: then there is no pattern. ``rows`` (n) lets k = n/(n−1) and
    (n−1)/n be named.
    """
    names = [k for k in truth if k in values]
    if not names:
        return ""
    v = np.array([_float(values[k]) for k in names], dtype=np.float64)
    t = np.array([_float(truth[k]) for k in names], dtype=np.float64)
    if not (np.isfinite(v).all() and np.isfinite(t).all()):
        return ""
    differs = ~_close(v, t, tol)
    if not differs.any():
        return ""
    v, t = v[differs], t[differs]
    if (t == 0).any():
        return ""
    for k, name in _candidates(rows, tol):
        if _close(v, k * t, tol).all():
            return name
    return ""


def _float(x) -> float:
    return to_float(x) if isinstance(x, Fraction) else float(x)


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    """|a − b| ≤ tol · max(|a|, |b|), elementwise (equal zeros are close)."""
    return np.abs(a - b) <= tol * np.maximum(np.abs(a), np.abs(b))


def _candidates(rows: int | None, tol: float) -> list[tuple[float, str]]:
    """(k, the bug it suggests), in the order they are tried: the common bugs first, so that
    k = 2 with n = 2 rows reads as the missing ½."""
    found = [(-1.0, f"×−1: {SIGN}"), (2.0, f"×2: {HALF}"), (0.5, f"×½: {HALF}")]
    if rows is not None and rows >= 3 and 1.0 / rows > BESSEL_MARGIN * tol:
        n = rows
        found.append((n / (n - 1), f"×{n}/{n - 1}: {BESSEL}, n = {n} rows"))
        found.append(((n - 1) / n, f"×{n - 1}/{n}: {BESSEL}, n = {n} rows"))
    if rows is not None and rows >= 2:  # before the shards: k = n is the rows' sum
        found.append(
            (float(rows), f"×{rows}: a sum over the n = {rows} rows where the mean belongs")
        )
        found.append(
            (1 / rows, f"×1/{rows}: a mean over the n = {rows} rows where the sum belongs")
        )
    for k in range(3, LARGEST_SHARDS + 1):
        found.append((float(k), f"{k}× — e.g. summed over {k} shards/steps instead of averaged"))
        found.append((1 / k, f"1/{k}× — e.g. averaged over {k} shards/steps instead of summed"))
    # A candidate the tolerance cannot tell from one tried before it is left out: its name
    # would be a guess.
    kept: list[tuple[float, str]] = []
    for k, name in found:
        if all(not math.isclose(k, j, rel_tol=4 * tol) for j, _ in kept):
            kept.append((k, name))
    return kept


__all__ = ["DEFAULT_TOL", "bug_kind"]
