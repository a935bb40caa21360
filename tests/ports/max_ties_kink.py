"""max_ties: maxout regression, jnp.max → torch. Data: data/ties4.csv (u0 = u1 = max in row 1)."""

DATA = "ties4.csv"

PARAMS = {
    "W": [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.25, 0.25, -0.5], [0.5, 0.5, 0.0]],
    "b": [0.0, 0.0, 0.25],
    "a": 0.75,
    "c": -0.25,
}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    u = X @ params["W"] + params["b"]
    m = u.max(dim=1).values  # KINK: on a tie max(dim).values picks one; jnp.max splits evenly
    prediction = params["a"] * m + params["c"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    u = X @ params["W"] + params["b"]
    m = jnp.max(u, axis=1)
    prediction = params["a"] * m + params["c"]
    return jnp.mean((prediction - y) ** 2)
