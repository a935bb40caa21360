"""``jax-fwd``: forward mode, ``jax.jacfwd`` — one JVP per parameter element, no backward pass.

An independent route to the same gradient: a bug in a custom VJP, or a reverse-mode rule,
shows up as a disagreement between this and ``jax-grad``.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._jax import check_dtype, jax_inputs
from ._numpy_loss import MAX_ELEMENTS
from .base import Output, SkipBackend
from .blocks import in_blocks


class JaxFwd:
    name = "jax-fwd"
    description = "jax.jacfwd (forward mode), eager"
    requires = ("jax", "jaxlib")
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import jax  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        if (blocked := in_blocks(self.compute, problem, dtype)) is not None:
            return blocked  # data beyond the memory budget: row blocks (blocks.py)
        import jax

        elements = sum(v.size for v in problem.params.values.values())
        if elements > MAX_ELEMENTS:
            raise SkipBackend(
                f"{elements} parameter elements: forward mode carries one tangent per element "
                f"through the whole computation (limit {MAX_ELEMENTS})"
            )

        with jax_inputs(problem, dtype) as (params, X, y, loss_fn, side):

            def loss_twice(p):  # the value rides along as aux: one forward pass, not two
                value = loss_fn(p, X, y)
                return value, value

            try:
                jacobian, loss = jax.jacfwd(loss_twice, has_aux=True)(params)
            except TypeError as exc:  # JAX: a custom_vjp function has no forward mode
                if "custom_vjp" not in str(exc):
                    raise
                raise SkipBackend(
                    "the loss uses a jax.custom_vjp function: no forward mode"
                ) from None
            loss = np.asarray(loss)
            grads = {k: np.asarray(g) for k, g in jacobian.items()}
        check_dtype(loss, dtype)
        return Output(loss, grads, side=side)
