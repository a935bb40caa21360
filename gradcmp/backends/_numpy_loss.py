"""What the derivative-free backends share: the loss as a numpy function of flat parameters."""

from __future__ import annotations

import numpy as np

from ..models.base import NoSuchSide
from ..params import element_names
from ..problem import Problem
from .base import SkipBackend

# Each element costs two (complex step: one) loss evaluations: beyond this many elements a
# run would take too long, and the backend is skipped, saying so.
MAX_ELEMENTS = 5000


def numpy_loss(problem: Problem):
    """(f(flat parameter vector) -> loss, flat θ, element names, side, unflatten) in float64,
    with the file's ``loss_numpy`` where it has one, else the generic loss with ``xp`` = numpy;
    ``unflatten`` turns a flat vector back into {name: array}."""
    params = problem.params.values
    names = [e for k, v in params.items() for e in element_names(k, v.shape)]
    if len(names) > MAX_ELEMENTS:
        raise SkipBackend(
            f"{len(names)} parameter elements: one loss evaluation each is too slow here "
            f"(limit {MAX_ELEMENTS})"
        )
    shapes = {k: v.shape for k, v in params.items()}
    sizes = [v.size for v in params.values()]
    theta = np.concatenate([v.ravel() for v in params.values()])
    try:
        loss_fn, side = problem.model.loss_for("numpy", np)
    except NoSuchSide:  # a port file with only its two sides: run one of them, in float64
        loss_fn, side = framework_side_in_numpy(problem)
    X, y = problem.data.X, problem.data.y
    if problem.model.integer_targets:
        y = np.asarray(y).astype(np.int64)

    def unflatten(flat):
        pieces = np.split(flat, np.cumsum(sizes)[:-1])
        return {k: p.reshape(shapes[k]) for k, p in zip(shapes, pieces)}

    def f(flat):
        return loss_fn(unflatten(flat), X, y)

    return f, theta, names, side, unflatten


def framework_side_in_numpy(problem: Problem):
    """(f(params, X, y) -> numpy float64 loss, side) running ``loss_torch`` (else
    ``loss_jax``) in float64 without differentiating it: what a derivative-free backend
    evaluates when the file has neither ``loss_numpy`` nor a generic ``loss``."""
    own = problem.model.framework_losses
    if "torch" in own:
        import torch

        def torch_side(params, X, y):
            with torch.no_grad():
                p = {k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in params.items()}
                X_t, y_t = torch.from_numpy(np.array(X)), torch.from_numpy(np.array(y))
                return own["torch"](p, X_t, y_t).detach().numpy()

        return torch_side, "loss_torch"
    import jax
    import jax.numpy as jnp

    def jax_side(params, X, y):
        with jax.enable_x64(True):
            p = {k: jnp.asarray(np.asarray(v, dtype=np.float64)) for k, v in params.items()}
            return np.asarray(own["jax"](p, jnp.asarray(X), jnp.asarray(y)))

    return jax_side, "loss_jax"
