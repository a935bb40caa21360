"""softplus_beta: softplus(beta=2) MLP, torch → JAX. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "W1": [[0.5, -0.3, 0.8], [-0.6, 0.4, 0.2], [0.3, 0.7, -0.5], [-0.2, -0.4, 0.6]],
    "b1": [0.1, -0.2, 0.05],
    "w2": [0.9, -0.7, 0.4],
    "b2": 0.2,
}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    u = X @ params["W1"] + params["b1"]
    h = F.softplus(u, beta=2.0)
    prediction = h @ params["w2"] + params["b2"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    u = X @ params["W1"] + params["b1"]
    h = jax.nn.softplus(u)  # TRAP: beta=2 dropped (jax.nn.softplus has no beta)
    prediction = h @ params["w2"] + params["b2"]
    return jnp.mean((prediction - y) ** 2)
