"""max_ties: maxout regression, jnp.max → torch. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W": [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.25, 0.25, -0.5], [0.5, 0.5, 0.0]],
    "b": [0.0, 0.0, 0.25],
    "a": 0.75,
    "c": -0.25,
}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    u = X @ params["W"] + params["b"]
    m = u.max(dim=1).values
    prediction = params["a"] * m + params["c"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    u = X @ params["W"] + params["b"]
    m = jnp.max(u, axis=1)
    prediction = params["a"] * m + params["c"]
    return jnp.mean((prediction - y) ** 2)
