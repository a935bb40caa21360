"""clip_bound: clipped MLP, torch.clamp → jnp.clip. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W1": [[1.0, 0.5, -0.25], [-1.0, 0.25, 0.5], [0.0, -0.75, 0.25], [0.0, 0.5, 1.0]],
    "b1": [0.0, 0.125, -0.375],
    "w2": [0.75, -0.5, 0.25],
    "b2": 0.5,
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    u = X @ params["W1"] + params["b1"]
    h = torch.clamp(u, -1.0, 1.0)
    prediction = h @ params["w2"] + params["b2"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    u = X @ params["W1"] + params["b1"]
    h = jnp.clip(u, -1.0, 1.0)
    prediction = h @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)
