"""Logistic regression: mean binary cross-entropy with logits, in its stable form.

    L = mean(log(1 + exp(z)) − y·z),  z = b + X·w,  y in [0, 1]

log(1 + exp(z)) is written logaddexp(0, z) (and max(z, 0) + log1p(exp(−|z|)) in the loops),
which neither overflows for large z nor loses the small values for very negative z.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import DataShape, Model, ScalarMath


def param_shapes(shape: DataShape) -> dict[str, tuple[int, ...]]:
    return {"b": (), "w": (shape.features,)}


def loss(params, X, y, xp):
    z = params["b"] + X @ params["w"]
    return xp.mean(xp.logaddexp(0.0, z) - y * z)


def native(params, rows, target, scalar):
    """dL/dz_i = σ(z_i) − y_i; dL/db = mean(σ(z) − y), dL/dw_j = mean((σ(z) − y)·x_j)."""
    (b,), w = params["b"], params["w"]
    m = ScalarMath(scalar)
    zero, one = scalar(0), scalar(1)
    loss_sum, grad_b, grad_w = zero, zero, [zero] * len(w)
    for x, y in zip(rows, target):
        z = b
        for j in range(len(w)):
            z = z + w[j] * x[j]
        softplus = max(z, zero) + m.log1p(m.exp(-abs(z)))  # log(1 + e^z), stably
        loss_sum = loss_sum + (softplus - y * z)
        # σ(z) without overflow: e^z / (1 + e^z) for z < 0, 1 / (1 + e^−z) otherwise
        sigma = m.exp(z) / (one + m.exp(z)) if z < zero else one / (one + m.exp(-z))
        dz = sigma - y
        grad_b = grad_b + dz
        for j in range(len(w)):
            grad_w[j] = grad_w[j] + dz * x[j]
    inv_n = one / scalar(len(target))
    return loss_sum * inv_n, {"b": [grad_b * inv_n], "w": [g * inv_n for g in grad_w]}


def numpy_grad(params, X, y):
    z = params["b"] + X @ params["w"]
    inv_n = X.dtype.type(1) / X.dtype.type(len(y))
    sigma = np.where(z < 0, np.exp(z) / (1 + np.exp(z)), 1 / (1 + np.exp(-z)))
    dz = sigma - y
    loss = (np.logaddexp(X.dtype.type(0), z) - y * z).sum() * inv_n
    return loss, {"b": dz.sum() * inv_n, "w": X.T @ dz * inv_n}


def validate(data) -> None:
    outside = np.flatnonzero((data.y < 0) | (data.y > 1))
    if outside.size:
        raise InputError(
            f"logistic needs targets in [0, 1]; row {outside[0] + 1} of {data.target} is "
            f"{float(data.y[outside[0]])!r}",
            where=data.path,
            hint="use 0/1 labels (or probabilities)",
        )


MODEL = Model(
    name="logistic",
    formula="L = mean(log(1 + exp(z)) − y·z), z = b + X·w",
    description="logistic regression, binary cross-entropy with logits (stable form); y in [0, 1]",
    param_shapes=param_shapes,
    loss=loss,
    native=native,
    numpy_grad=numpy_grad,
    validate=validate,
)
