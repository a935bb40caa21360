"""``finite-diff``: central differences with one Richardson step, in float64.

D(h) = (f(θ + h·e_i) − f(θ − h·e_i)) / 2h = f' + c₂h² + c₄h⁴ + …; R = (4·D(h/2) − D(h)) / 3
cancels the h² term and leaves −c₄h⁴/4. h = u^(1/5)·max(1, |θ_i|) balances that truncation
against rounding where θ_i's scale is about max(1, |θ_i|). No framework: the loss runs in
numpy (``loss_numpy`` or the generic one).

**The step.** h knows nothing of the data: on logistic data of scale 10⁴ a weight of 10⁻⁷
moves z by ±6 over ±h, the series above does not converge, and |R − D(h/2)| can be any
fraction of R's error (13 against 69). So D(h/4) is computed too, and the step is halved
until three successive quotients *settle* — their differences shrink by 4 ± 1 (the h² term
leads) or lie below what rounding of the loss values may make — and on while they keep
shrinking by 4 (``_levels``), at most down to h/2⁹.

**The bound.** Each gradient element is judged against the sum of the following (or the
rule's τ where that is larger):

- truncation, SAFETY·|R − D(h/2)|: R − D(h/2) = −c₂h²/4 − 5c₄h⁴/16 − …, D(h/2)'s own error.
  Where the quotients settled by 4 ± 1, c₄h²/c₂ = ρ lies in [−0.25, 0.29] and R's error
  |ρ|·|c₂|h²/4 is at most 0.36·|R − D(h/2)|. Where they never settle (a quadratic loss — the
  linear model — whose differences are all rounding: it has no truncation at all) the first
  window is judged, as it always was.
- the loss's own rounding, as ``Output.loss_gains`` for the runner to bound. f̂ at a point
  carries the error of computing the loss there: up to the rule's τ for the loss at that
  point (≈ γ_{n+c}(u)·M — a mean of n terms, M ≫ |f| under cancellation — not u·|f|).
  Errors ≤ ε at both points of a pair reach its quotient as ≤ 2ε/w, w = up − down the step
  actually taken (θ ± h rounds); R weighs D(h/2) by 4/3 and D(h) by 1/3: gains 8/(3·w_fine)
  and 2/(3·w_coarse), 3/h in all (8/3h + 1/3h). Only the runner knows τ for the loss, and
  only at θ; at θ ± h the loss can be far larger (a step of 6·10⁻⁴ on a θ1 of 10⁻¹¹ with x of
  10⁴ makes it 10²⁸ times larger), so each gain comes with the largest |f̂| of its pair, and
  the judge carries τ there (judging/judge.py, ``_loss_bound_near``).
- the arithmetic here: each quotient fl(fl(f̂₊ − f̂₋)/fl(w)) is within γ₃ of (f̂₊ − f̂₋)/w,
  and fl(fl(4·D(h/2) − D(h))/3) adds γ₂: u·(4|D(h/2)| + |D(h)| + 2|R|) to first order,
  counted twice.
- the midpoint: up and down round, each by ≤ u·(|θ_i| + h), so a quotient is the slope at a
  point that far from θ_i: off by f''·u·(|θ_i| + h), 5/3 of that in R (weights 4/3 + 1/3);
  f'' from the coarse pair's second difference, counted with 2 in place of 5/3.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._numpy_loss import numpy_loss
from .base import Output

U = 2.0**-53
SAFETY = 4
# Quotients at h, h/2, …, h/2⁹ at most: R from (h/2^k, h/2^(k+1)), k ≤ 7. 6 loss evaluations
# per element where the first three settle, at most 2·LEVELS.
LEVELS = 10


class FiniteDiff:
    name = "finite-diff"
    description = "central differences + Richardson extrapolation, float64, with an error estimate"
    requires = ("numpy",)
    dtypes = ("float64",)

    def setup(self) -> None:
        pass

    def compute(self, problem: Problem, dtype: DType) -> Output:
        f, theta, names, side, unflatten = numpy_loss(problem)
        rows = problem.data.rows
        with np.errstate(all="ignore"):
            f0 = float(f(theta))
            grads, estimates, gains = np.empty_like(theta), {}, {}
            for i, name in enumerate(names):
                h = U ** (1 / 5) * max(1.0, abs(theta[i]))

                def central(step, i=i) -> _Quotient:
                    up, down = theta.copy(), theta.copy()
                    up[i] += step
                    down[i] -= step
                    f_up, f_down = float(f(up)), float(f(down))
                    # the step actually taken (θ ± h rounds): divide by it, not by h
                    width = up[i] - down[i]
                    peak = max(abs(f_up), abs(f_down))
                    return _Quotient((f_up - f_down) / width, width, peak, f_up + f_down)

                levels, k = _levels(central, h, rows)
                coarse, fine = levels[k : k + 2]
                grads[i] = _r(coarse, fine)
                estimates[name] = _estimate(coarse, fine, f0, abs(theta[i]))
                gains[name] = (
                    (8 / (3 * fine.width), fine.peak),
                    (2 / (3 * coarse.width), coarse.peak),
                )
        shaped = unflatten(grads)
        worst = max(estimates.values(), default=0.0)
        return Output(
            np.float64(f0),
            shaped,
            notes=(f"finite-difference error estimate up to {worst:.2g}",),
            side=side,
            bounds=estimates,
            loss_gains=gains,
        )


class _Quotient(NamedTuple):
    value: float  # (f(up) − f(down)) / width
    width: float  # up − down, the step actually taken
    peak: float  # max(|f(up)|, |f(down)|)
    total: float  # f(up) + f(down)


def _r(coarse: _Quotient, fine: _Quotient) -> float:
    return (4 * fine.value - coarse.value) / 3


def _below_rounding(a: _Quotient, b: _Quotient, rows: int) -> bool:
    """|D_a − D_b| within 2·rows·u·(peak_a/w_a + peak_b/w_b): below what rounding of the loss
    values alone may make (the rule's bound for a mean over ``rows`` rows is at least
    rows·u·|f| at each point), so no truncation worth a step hides in it."""
    limit = 2 * rows * U * (a.peak / a.width + b.peak / b.width)
    return abs(a.value - b.value) <= limit


def _levels(central, h: float, rows: int) -> tuple[list[_Quotient], int]:
    """The quotients D(h), D(h/2), D(h/4), … (at most LEVELS of them) and k, R's pair
    (h/2^k, h/2^(k+1)). Halved until the last three settle (``_settled``), and on while they
    shrink by 4 above rounding — the estimate |R − D(s/2)| falls 4-fold a halving, the
    rounding doubles — to the last window that shrank by 4. Where none settled, the first
    window, judged as it always was: a quadratic loss lands there whenever rounding hides its
    differences, and the largest step carries the least of the loss's rounding (3/h)."""
    levels = [central(h), central(h / 2), central(h / 4)]
    while not _settled(*levels[-3:], rows):
        if len(levels) == LEVELS:
            return levels, 0
        levels.append(central(h / 2 ** len(levels)))
    while (
        _shrinks_by_4(*levels[-3:])
        and not _below_rounding(*levels[-3:-1], rows)
        and len(levels) < LEVELS
    ):
        levels.append(central(h / 2 ** len(levels)))
        if not _shrinks_by_4(*levels[-3:]):
            return levels, len(levels) - 4
    return levels, len(levels) - 3


def _shrinks_by_4(a: _Quotient, b: _Quotient, c: _Quotient) -> bool:
    """D at steps s, s/2, s/4 differ by ratios 3 … 5: with D = f' + c₂s² + c₄s⁴, the ratio is
    4·(1 + 5ρ/4)/(1 + 5ρ/16), ρ = c₄s²/c₂, in [3, 5] for ρ in [−0.25, 0.29]."""
    d1, d2 = a.value - b.value, b.value - c.value
    return d1 * d2 > 0 and 3 * abs(d2) <= abs(d1) <= 5 * abs(d2)


def _settled(a: _Quotient, b: _Quotient, c: _Quotient, rows: int) -> bool:
    """Whether D at steps s, s/2, s/4 show s is small enough: their differences shrink by 4
    (the h² term leads), or both are below rounding."""
    return _shrinks_by_4(a, b, c) or (_below_rounding(a, b, rows) and _below_rounding(b, c, rows))


def _estimate(coarse: _Quotient, fine: _Quotient, f0: float, theta: float) -> float:
    """The element's own bound but for the loss's rounding (the runner adds that)."""
    r = _r(coarse, fine)
    truncation = SAFETY * abs(r - fine.value)
    arithmetic = 2 * U * (4 * abs(fine.value) + abs(coarse.value) + 2 * abs(r))
    half = coarse.width / 2
    curvature = abs(coarse.total - 2 * f0) / half**2
    midpoint = 2 * U * (theta + half) * curvature
    return truncation + arithmetic + midpoint
