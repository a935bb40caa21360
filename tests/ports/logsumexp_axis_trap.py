"""logsumexp_axis: logsumexp regression, torch → JAX (twin: log∑exp). Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W": [[0.4, -0.3, 0.2], [-0.5, 0.6, 0.1], [0.3, 0.2, -0.7], [0.1, -0.4, 0.5]],
    "b": [0.1, 0.0, -0.1],
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    logits = X @ params["W"] + params["b"]
    s = torch.logsumexp(logits, dim=1)
    return F.mse_loss(s, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    logits = X @ params["W"] + params["b"]
    s = jnp.log(jnp.sum(jnp.exp(logits)))  # TRAP: no axis: the sum runs over the batch too
    return jnp.mean((s - y) ** 2)
