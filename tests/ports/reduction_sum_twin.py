"""reduction_sum: sum-of-squares regression, torch → JAX. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {"w": [0.6, -0.4, 0.3, 0.2], "b": 0.1}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    prediction = X @ params["w"] + params["b"]
    return F.mse_loss(prediction, y, reduction="sum")


def loss_jax(params, X, y):
    import jax.numpy as jnp

    prediction = X @ params["w"] + params["b"]
    return jnp.sum((prediction - y) ** 2)
