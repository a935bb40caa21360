"""eps_sqrt: RMSNorm, torch → JAX (twin: 1/sqrt for rsqrt). Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "gamma": [1.1, 0.9, 1.2, 0.8],
    "beta": [0.1, -0.1, 0.05, 0.0],
    "w": [0.5, -0.6, 0.7, 0.3],
    "b": 0.2,
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    ms = X.pow(2).mean(dim=-1, keepdim=True)
    normed = X * torch.rsqrt(ms + 1e-6)
    h = normed * params["gamma"] + params["beta"]
    prediction = h @ params["w"] + params["b"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    ms = jnp.mean(X**2, axis=-1, keepdims=True)
    normed = X / (jnp.sqrt(ms) + 1e-6)  # TRAP: eps added outside the square root
    h = normed * params["gamma"] + params["beta"]
    prediction = h @ params["w"] + params["b"]
    return jnp.mean((prediction - y) ** 2)
