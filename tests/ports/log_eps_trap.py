"""log_eps: hand-written clamped BCE, torch → JAX. Data: data/binary4.csv."""

DATA = "binary4.csv"

PARAMS = {"w": [0.6, -0.4, 0.3, 0.2], "b": 0.1}


def loss_torch(params, X, y):
    import torch

    p = torch.sigmoid(X @ params["w"] + params["b"])
    log_p = torch.log(torch.clamp(p, min=1e-7))
    log_q = torch.log(torch.clamp(1 - p, min=1e-7))
    return -torch.mean(y * log_p + (1 - y) * log_q)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    p = jax.nn.sigmoid(X @ params["w"] + params["b"])
    log_p = jnp.log(p + 1e-7)  # TRAP: log(p + eps) where torch clamps: log(max(p, eps))
    log_q = jnp.log(jnp.maximum(1 - p, 1e-7))
    return -jnp.mean(y * log_p + (1 - y) * log_q)
