"""rmsnorm_scale: Gemma-style RMSNorm, JAX → torch. Data: data/features4.csv."""

DATA = "features4.csv"

PARAMS = {
    "scale": [0.1, -0.05, 0.2, 0.15],
    "w": [0.5, -0.6, 0.7, 0.3],
    "b": 0.2,
}


def loss_torch(params, X, y):
    import torch
    import torch.nn.functional as F

    ms = X.pow(2).mean(dim=-1, keepdim=True)
    normed = X / torch.sqrt(ms + 1e-6)
    h = normed * params["scale"]  # TRAP: Gemma's RMSNorm scales by (1 + scale); the 1 was dropped
    prediction = h @ params["w"] + params["b"]
    return F.mse_loss(prediction, y)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    ms = jnp.mean(X**2, axis=-1, keepdims=True)
    normed = X * jax.lax.rsqrt(ms + 1e-6)
    h = normed * (1.0 + params["scale"])
    prediction = h @ params["w"] + params["b"]
    return jnp.mean((prediction - y) ** 2)
