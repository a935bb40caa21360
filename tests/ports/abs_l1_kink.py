"""abs_l1: L1 regression, F.l1_loss → jnp.abs. Data: data/ties4.csv (prediction = y in row 0)."""

DATA = "ties4.csv"

PARAMS = {"w": [0.5, -0.25, 1.0, 0.75], "b": 0.5}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    prediction = X @ params["w"] + params["b"]
    return F.l1_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    prediction = X @ params["w"] + params["b"]
    return jnp.mean(jnp.abs(prediction - y))  # KINK: jnp.abs has gradient 1 at 0; F.l1_loss's is 0
