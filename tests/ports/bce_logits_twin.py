"""bce_logits: logistic regression, torch BCE on probabilities → JAX. Data: data/binary4.csv."""

DATA = "binary4.csv"

PARAMS = {"w": [0.6, -0.4, 0.3, 0.2], "b": 0.1}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    z = X @ params["w"] + params["b"]
    p = torch.sigmoid(z)
    return F.binary_cross_entropy(p, y)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    p = jax.nn.sigmoid(X @ params["w"] + params["b"])
    return jnp.mean(-(y * jnp.log(p) + (1 - y) * jnp.log1p(-p)))
