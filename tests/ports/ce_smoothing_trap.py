"""ce_smoothing: label-smoothed softmax regression, JAX → torch. Data: data/labels3.csv."""

DATA = "labels3.csv"

PARAMS = {
    "W": [[0.4, -0.3, 0.2], [-0.5, 0.6, 0.1], [0.3, 0.2, -0.7], [0.1, -0.4, 0.5]],
    "b": [0.1, 0.0, -0.1],
}


def loss_torch(params, X, y):
    import torch.nn.functional as F

    logits = X @ params["W"] + params["b"]
    return F.cross_entropy(logits, y.long())  # TRAP: label_smoothing=0.1 of the JAX targets dropped


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    logits = X @ params["W"] + params["b"]
    targets = jax.nn.one_hot(y.astype(int), 3) * (1 - 0.1) + 0.1 / 3
    return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(logits), axis=-1))
