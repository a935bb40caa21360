"""``numpy``: the model's hand-derived gradient, vectorised with numpy arrays of the dtype."""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from .base import Output, SkipBackend


class NumpyGrad:
    name = "numpy"
    description = "hand-derived gradient, vectorised numpy (float64/32/16)"
    requires = ("numpy",)
    dtypes = ("float64", "float32", "float16")

    def setup(self) -> None:
        pass

    def compute(self, problem: Problem, dtype: DType) -> Output:
        model = problem.model
        if model.numpy_grad is None:
            raise SkipBackend(f"{model.name} has no vectorised hand-derived gradient")
        X, y = problem.inputs(dtype)
        params = problem.params.as_dtype(dtype)
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            loss, grads = model.numpy_grad(params, X, y)
        return Output(np.asarray(loss), {k: np.asarray(g) for k, g in grads.items()})
