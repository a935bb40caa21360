"""``complex-step``: ∂f/∂θ_i = Im f(θ + i·h·e_i) / h with h = 1e-100, in complex128.

There is no subtraction, so no cancellation: the result is accurate to rounding, like forward
mode. It needs a loss that is complex-safe (analytic, built from + − × ÷ exp tanh …); abs,
maximum, comparisons and logaddexp are not, and such a loss is skipped with the reason.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._numpy_loss import numpy_loss
from .base import Output, SkipBackend

STEP = 1e-100


class ComplexStep:
    name = "complex-step"
    description = "Im f(θ + ih)/h, complex128: no cancellation; complex-safe losses only"
    requires = ("numpy",)
    dtypes = ("float64",)

    def setup(self) -> None:
        pass

    def compute(self, problem: Problem, dtype: DType) -> Output:
        f, theta, names, side, unflatten = numpy_loss(problem)
        grads = np.empty_like(theta)
        with np.errstate(all="ignore"):
            loss = f(theta)
            for i in range(theta.size):
                probe = theta.astype(np.complex128)
                probe[i] += 1j * STEP
                try:
                    value = np.asarray(f(probe))
                except (TypeError, ValueError) as exc:
                    what = str(exc).split(" not supported")[0].split(",")[0]
                    raise SkipBackend(f"the loss is not complex-safe ({what})") from None
                if not np.iscomplexobj(value) or value.imag == 0 and _depends(f, theta, i):
                    raise SkipBackend("the loss is not complex-safe (it drops imaginary parts)")
                grads[i] = value.imag / STEP
        shaped = unflatten(grads)
        return Output(np.asarray(loss, dtype=np.float64), shaped, side=side)


def _depends(f, theta, i) -> bool:
    """Whether f has a clearly nonzero slope in θ_i (a zero derivative — at a stationary
    point — is not a complex-safety failure; a dropped imaginary part is)."""
    step = 1e-4 * max(1.0, abs(theta[i]))
    up, down = theta.copy(), theta.copy()
    up[i] += step
    down[i] -= step
    slope = (float(f(up)) - float(f(down))) / (2 * step)
    return abs(slope) > 1e-6 * max(1.0, abs(float(f(theta))))
