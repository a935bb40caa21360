"""A port of a linear-regression loss from PyTorch to JAX, checked with gradcmp.

    gradcmp run --loss examples/port_linear.py --data data/xy.csv

``loss`` is the specification, written once against the array API (``xp``); it is what the
high-precision reference evaluates. ``loss_torch`` is the original PyTorch code and
``loss_jax`` its port: gradcmp differentiates each with its own framework and holds both
against the reference. ``grad_native`` is a hand-derived gradient for the ``native`` backend.
"""

PARAMS = {"theta0": 0.0, "theta1": 0.0}


def loss(params, X, y, xp):
    """L = mean((theta0 + theta1·x − y)²) / 2"""
    residual = params["theta0"] + params["theta1"] * X[:, 0] - y
    return xp.mean(residual * residual) / 2


def loss_torch(params, X, y):
    import torch.nn.functional as F

    prediction = params["theta0"] + params["theta1"] * X[:, 0]
    return F.mse_loss(prediction, y) / 2


def loss_jax(params, X, y):
    import jax.numpy as jnp

    prediction = params["theta0"] + params["theta1"] * X[:, 0]
    return jnp.mean((prediction - y) ** 2) / 2


def grad_native(params, X, y):
    n = len(y)
    g0 = g1 = 0.0
    for row, target in zip(X, y):
        r = params["theta0"] + params["theta1"] * row[0] - target
        g0 += r
        g1 += r * row[0]
    return {"theta0": g0 / n, "theta1": g1 / n}
