"""var_ddof: batch-standardised tanh MLP, torch → JAX. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W1": [[0.5, -0.3, 0.8], [-0.6, 0.4, 0.2], [0.3, 0.7, -0.5], [-0.2, -0.4, 0.6]],
    "w2": [0.9, -0.7, 0.4],
    "b2": 0.2,
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    u = X @ params["W1"]
    var = u.var(dim=0)
    h = torch.tanh((u - u.mean(dim=0)) / torch.sqrt(var + 1e-5))
    prediction = h @ params["w2"] + params["b2"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    u = X @ params["W1"]
    var = jnp.var(u, axis=0)  # TRAP: jnp.var is biased (ddof=0); torch.var(u, dim=0) is unbiased
    h = jnp.tanh((u - jnp.mean(u, axis=0)) / jnp.sqrt(var + 1e-5))
    prediction = h @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)
