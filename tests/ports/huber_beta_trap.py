"""huber_beta: smooth-L1 (beta=0.5) regression, torch → JAX Huber. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {"w": [0.6, -0.4, 0.3, 0.2], "b": 0.1}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    prediction = X @ params["w"] + params["b"]
    return F.smooth_l1_loss(prediction, y, beta=0.5)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    a = jnp.abs(X @ params["w"] + params["b"] - y)
    huber = jnp.where(a < 0.5, 0.5 * a**2, 0.5 * (a - 0.25))  # TRAP: Huber(δ) = β·smooth_l1: no 1/β
    return jnp.mean(huber)
