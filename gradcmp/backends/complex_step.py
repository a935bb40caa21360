"""``complex-step``: ∂f/∂θ_i = Im f(θ + i·h·e_i) / h with h = 1e-100, in complex128.

There is no subtraction, so no cancellation: the result is accurate to rounding, like forward
mode. It needs a loss that is complex-safe (analytic, built from + − × ÷ exp tanh …). The
parameters arrive as an ``Analytic`` array that refuses abs, comparisons, max/min, clip and
logaddexp on complex values, so such a loss is skipped, saying which operation, instead of
giving a silently wrong slope.
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
        if side in ("loss_torch", "loss_jax"):
            raise SkipBackend(
                f"the complex step needs loss_numpy or a generic loss ({side} runs on real tensors)"
            )
        grads = np.empty_like(theta)
        with np.errstate(all="ignore"):
            loss = f(theta)
            for i in range(theta.size):
                probe = theta.astype(np.complex128)
                probe[i] += 1j * STEP
                try:
                    value = np.asarray(f(probe.view(Analytic)))
                except NotAnalytic as exc:
                    raise SkipBackend(f"the loss is not complex-safe ({exc})") from None
                except (TypeError, ValueError) as exc:
                    what = str(exc).split(" not supported")[0].split(",")[0]
                    raise SkipBackend(f"the loss is not complex-safe ({what})") from None
                if not np.iscomplexobj(value):
                    raise SkipBackend("the loss is not complex-safe (it drops imaginary parts)")
                grads[i] = value.imag / STEP
        shaped = unflatten(grads)
        return Output(np.asarray(loss, dtype=np.float64), shaped, side=side)


class NotAnalytic(TypeError):
    """A non-analytic operation met the complex step."""


# numpy ufuncs that are not analytic in a complex argument (or compare, which drops the
# imaginary part): they would silently give a wrong complex-step derivative.
NOT_ANALYTIC = {
    np.absolute,
    np.sign,
    np.maximum,
    np.minimum,
    np.fmax,
    np.fmin,
    np.greater,
    np.greater_equal,
    np.less,
    np.less_equal,
    np.equal,
    np.not_equal,
    np.floor,
    np.ceil,
    np.rint,
    np.trunc,
    np.clip,
    np.fabs,
    np.heaviside,
    np.logaddexp,
    np.logaddexp2,
}


class Analytic(np.ndarray):
    """A complex array that refuses non-analytic operations: abs, comparisons, max/min,
    clip … (a loss using them is skipped, saying which, instead of giving a wrong slope)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [np.asarray(x) if isinstance(x, Analytic) else x for x in inputs]
        if ufunc in NOT_ANALYTIC and any(np.iscomplexobj(x) for x in plain):
            raise NotAnalytic(f"it uses {ufunc.__name__}")
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(o) for o in kwargs["out"])
        result = getattr(ufunc, method)(*plain, **kwargs)
        if isinstance(result, np.ndarray) and np.iscomplexobj(result):
            return result.view(Analytic)
        return result
