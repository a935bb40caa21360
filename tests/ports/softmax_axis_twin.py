"""softmax_axis: softmax-pooled regression, torch → JAX. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W": [[0.4, -0.3, 0.2], [-0.5, 0.6, 0.1], [0.3, 0.2, -0.7], [0.1, -0.4, 0.5]],
    "b": [0.1, 0.0, -0.1],
    "v": [1.5, -0.5, 0.8],
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    logits = X @ params["W"] + params["b"]
    weights = torch.softmax(logits, dim=1)
    prediction = weights @ params["v"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    logits = X @ params["W"] + params["b"]
    weights = jax.nn.softmax(logits)
    prediction = weights @ params["v"]
    return jnp.mean((prediction - y) ** 2)
