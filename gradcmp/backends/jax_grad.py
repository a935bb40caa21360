"""``jax-grad``: ``jax.value_and_grad`` run eagerly (no jit); x64 scoped as ``_jax.py`` says."""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._jax import check_dtype, jax_inputs
from .base import Output
from .blocks import in_blocks


class JaxGrad:
    name = "jax-grad"
    description = "jax.value_and_grad, eager; float64 under a scoped jax.enable_x64"
    requires = ("jax", "jaxlib")
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import jax  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        if (blocked := in_blocks(self.compute, problem, dtype)) is not None:
            return blocked  # data beyond the memory budget: row blocks (blocks.py)
        import jax

        with jax_inputs(problem, dtype) as (params, X, y, loss_fn, side):
            loss, grads = jax.value_and_grad(lambda p: loss_fn(p, X, y))(params)
            loss, grads = np.asarray(loss), {k: np.asarray(g) for k, g in grads.items()}
        check_dtype(loss, dtype)
        return Output(loss, grads, side=side)
