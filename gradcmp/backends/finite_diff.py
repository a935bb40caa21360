"""``finite-diff``: central differences with one Richardson step, in float64.

D(h) = (f(θ + h·e_i) − f(θ − h·e_i)) / 2h has error c·h² + O(h⁴); (4·D(h/2) − D(h)) / 3
cancels the h² term. h = u^(1/5)·max(1, |θ_i|) balances the remaining O(h⁴) truncation against
the rounding error u·|f|/h. Its error estimate — |R − D(h/2)| (what the Richardson step
changed) plus u·|f|/h — is not a rounding-error bound, so this backend is judged against 4×
that estimate (or the rule's τ where that is larger): a disagreement means the loss is not
smooth at θ, or a real difference. No framework: the loss runs in numpy (``loss_numpy`` or
the generic one).
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._numpy_loss import numpy_loss
from .base import Output

U = 2.0**-53
SAFETY = 4


class FiniteDiff:
    name = "finite-diff"
    description = "central differences + Richardson extrapolation, float64, with an error estimate"
    requires = ("numpy",)
    dtypes = ("float64",)

    def setup(self) -> None:
        pass

    def compute(self, problem: Problem, dtype: DType) -> Output:
        f, theta, names, side, unflatten = numpy_loss(problem)
        with np.errstate(all="ignore"):
            f0 = float(f(theta))
            grads, estimates = np.empty_like(theta), {}
            for i, name in enumerate(names):
                h = U ** (1 / 5) * max(1.0, abs(theta[i]))

                def central(step, i=i):
                    up, down = theta.copy(), theta.copy()
                    up[i] += step
                    down[i] -= step
                    # the step actually taken (θ ± h rounds): divide by it, not by h
                    return (float(f(up)) - float(f(down))) / (up[i] - down[i])

                coarse, fine = central(h), central(h / 2)
                grads[i] = (4 * fine - coarse) / 3
                estimates[name] = SAFETY * (abs(grads[i] - fine) + U * abs(f0) / h)
        shaped = unflatten(grads)
        worst = max(estimates.values(), default=0.0)
        return Output(
            np.float64(f0),
            shaped,
            notes=(f"finite-difference error estimate up to {worst:.2g}",),
            side=side,
            bounds=estimates,
        )
