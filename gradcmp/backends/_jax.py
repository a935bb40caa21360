"""What the JAX backends share: inputs and the loss under a scoped x64 setting.

float64 needs JAX's x64 mode. gradcmp turns it on only inside a backend's call, with the
thread-local ``jax.enable_x64`` context manager, so a program that imports gradcmp keeps its own
``jax_enable_x64`` setting; float32 runs with x64 off, whatever the caller's setting, so the
result does not depend on it.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager

import numpy as np

from ..dtypes import DType
from ..problem import Problem


@contextmanager
def jax_inputs(problem: Problem, dtype: DType):
    """Yields (params, X, y, loss(params, X, y), side) as JAX arrays in ``dtype``: the
    file's ``loss_jax`` where it has one, else the generic loss with ``xp`` = jax.numpy."""
    import jax
    import jax.numpy as jnp

    from .devices import jax_device

    device = jax_device()  # None (JAX's default), or the GPU of ``jax-grad@cuda`` (devices.py)
    X_np, y_np = problem.inputs(dtype)
    placed = jax.default_device(device) if device is not None else contextlib.nullcontext()
    with jax.enable_x64(dtype.name == "float64"), placed:
        X, y = _in_place(X_np, device), _in_place(y_np, device)
        params = {k: jnp.asarray(v) for k, v in problem.params.as_dtype(dtype).items()}
        if device is not None:
            params = jax.device_put(params, device)
        loss_fn, side = problem.model.loss_for("jax", jnp)
        yield params, X, y, loss_fn, side


def _in_place(array: np.ndarray, device=None):
    """A JAX array of ``array``: on a CPU, ``jax.device_put`` uses a 64-byte aligned numpy
    array's memory in place (the inputs are made page-aligned, pages.py), where
    ``jnp.asarray`` copies it; an array JAX would convert (int64 labels with x64 off) is
    converted, as ``jnp.asarray`` does. The inputs are read-only: nothing writes to them.
    On a GPU, the one copy there."""
    import jax
    import jax.numpy as jnp

    if array.dtype != jax.dtypes.canonicalize_dtype(array.dtype):
        return jax.device_put(jnp.asarray(array), device)
    return jax.device_put(array, device)


def check_dtype(loss: np.ndarray, dtype: DType) -> None:
    """A float64 run that came back in float32 means x64 was off: a failure, not a result."""
    if loss.dtype != dtype.numpy_dtype:
        raise RuntimeError(f"computed in {loss.dtype}, not {dtype.name} (JAX x64 off?)")
