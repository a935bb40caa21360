"""``jax-grad``: ``jax.value_and_grad`` run eagerly (no jit).

float64 needs JAX's x64 mode. gradcmp turns it on only inside this backend's call, with the
thread-local ``jax.enable_x64`` context manager, so a program that imports gradcmp keeps its own
``jax_enable_x64`` setting; float32 runs with x64 off, whatever the caller's setting, so the
result does not depend on it.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from .base import Output


class JaxGrad:
    name = "jax-grad"
    description = "jax.value_and_grad, eager; float64 under a scoped jax.enable_x64"
    requires = ("jax", "jaxlib")
    dtypes = ("float64", "float32")

    def setup(self) -> None:
        import jax  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        import jax
        import jax.numpy as jnp

        X_np, y_np = problem.inputs(dtype)
        with jax.enable_x64(dtype.name == "float64"):
            X, y = jnp.asarray(X_np), jnp.asarray(y_np)
            params = {k: jnp.asarray(v) for k, v in problem.params.as_dtype(dtype).items()}

            loss_fn, which = problem.model.loss_for("jax", jnp)

            def loss_of(p):
                return loss_fn(p, X, y)

            loss, grads = jax.value_and_grad(loss_of)(params)
            loss, grads = np.asarray(loss), {k: np.asarray(g) for k, g in grads.items()}
        if loss.dtype != np.dtype(dtype.name):
            raise RuntimeError(f"computed in {loss.dtype}, not {dtype.name}")
        return Output(loss, grads, side=which)
