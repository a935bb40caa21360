"""``jax-jit``: ``jax.jit(jax.value_and_grad(loss))``, compiled by XLA ahead of the timed call.

The compile time is reported apart (``compile_seconds``, which includes the compiled
function's first call: XLA sets up its executable then, ≈3 ms whatever the data size);
``seconds`` is the second call alone, what every later call costs. XLA may fuse and reorder
operations that eager JAX runs one by one, so jit and eager can differ in the last bits; the
agreement rule covers any such order.
"""

from __future__ import annotations

import time

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from ._jax import check_dtype, jax_inputs
from .base import Output


class JaxJit:
    name = "jax-jit"
    description = "jax.jit(jax.value_and_grad), XLA-compiled; compile time reported apart"
    requires = ("jax", "jaxlib")
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import jax  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        import jax

        with jax_inputs(problem, dtype) as (params, X, y, loss_fn, side):
            function = jax.jit(jax.value_and_grad(lambda p, X, y: loss_fn(p, X, y)))
            start = time.perf_counter()
            compiled = function.lower(params, X, y).compile()
            jax.block_until_ready(compiled(params, X, y))  # the one-time first call
            compile_seconds = time.perf_counter() - start
            start = time.perf_counter()
            loss, grads = jax.block_until_ready(compiled(params, X, y))
            run_seconds = time.perf_counter() - start
            loss, grads = np.asarray(loss), {k: np.asarray(g) for k, g in grads.items()}
        check_dtype(loss, dtype)
        return Output(
            loss,
            grads,
            side=side,
            compile_seconds=compile_seconds,
            run_seconds=run_seconds,
        )
