"""layernorm_eps: layer norm, torch F.layer_norm → hand-written JAX. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "gamma": [1.1, 0.9, 1.2, 0.8],
    "beta": [0.1, -0.1, 0.05, 0.0],
    "w": [0.5, -0.6, 0.7, 0.3],
    "b": 0.2,
}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    h = F.layer_norm(X, (4,), params["gamma"], params["beta"])
    prediction = h @ params["w"] + params["b"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    mean = jnp.mean(X, axis=-1, keepdims=True)
    var = jnp.var(X, axis=-1, keepdims=True)
    normed = (X - mean) / jnp.sqrt(var + 1e-6)  # TRAP: eps 1e-6 is flax's default; torch uses 1e-5
    h = normed * params["gamma"] + params["beta"]
    prediction = h @ params["w"] + params["b"]
    return jnp.mean((prediction - y) ** 2)
