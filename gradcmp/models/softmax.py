"""Softmax regression: multiclass cross-entropy with integer class targets.

    L = mean(logsumexp(z_i) − z_i[y_i]),  z_i = b + x_i·W,  y_i in {0, …, K − 1}

K is the largest label + 1. logsumexp subtracts each row's maximum first, so no exp overflows.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import DataShape, Model, ScalarMath


def param_shapes(shape: DataShape) -> dict[str, tuple[int, ...]]:
    return {"W": (shape.features, shape.classes), "b": (shape.classes,)}


def loss(params, X, y, xp):
    z = X @ params["W"] + params["b"]
    top = xp.max(z, axis=1, keepdims=True)
    logsumexp = top[:, 0] + xp.log(xp.sum(xp.exp(z - top), axis=1))
    labels = xp.astype(y, xp.int32)
    picked = z[xp.arange(z.shape[0]), labels]
    return xp.mean(logsumexp - picked)


def native(params, rows, target, scalar):
    """dL/dz_ik = p_ik − [k = y_i] with p_i = softmax(z_i); dW_jk = mean(x_ij·dz_ik)."""
    b = params["b"]
    k_classes = len(b)
    d = len(params["W"]) // k_classes
    W = [params["W"][j * k_classes : (j + 1) * k_classes] for j in range(d)]  # row-major
    m = ScalarMath(scalar)
    zero, one = scalar(0), scalar(1)
    loss_sum = zero
    grad_W = [[zero] * k_classes for _ in range(d)]
    grad_b = [zero] * k_classes
    for x, y in zip(rows, target):
        z = list(b)
        for k in range(k_classes):
            for j in range(d):
                z[k] = z[k] + x[j] * W[j][k]
        top = max(z)
        e = [m.exp(zk - top) for zk in z]
        total = zero
        for ek in e:
            total = total + ek
        label = int(y)
        loss_sum = loss_sum + (top + m.log(total) - z[label])
        for k in range(k_classes):
            dz = e[k] / total - (one if k == label else zero)
            grad_b[k] = grad_b[k] + dz
            for j in range(d):
                grad_W[j][k] = grad_W[j][k] + x[j] * dz
    inv_n = one / scalar(len(target))
    return loss_sum * inv_n, {
        "W": [g * inv_n for row in grad_W for g in row],
        "b": [g * inv_n for g in grad_b],
    }


def numpy_grad(params, X, y):
    z = X @ params["W"] + params["b"]
    top = z.max(axis=1, keepdims=True)
    e = np.exp(z - top)
    total = e.sum(axis=1, keepdims=True)
    rows, labels = np.arange(len(y)), y.astype(np.int64)
    inv_n = X.dtype.type(1) / X.dtype.type(len(y))
    loss = (top[:, 0] + np.log(total[:, 0]) - z[rows, labels]).sum() * inv_n
    dz = e / total
    dz[rows, labels] -= 1
    return loss, {"W": X.T @ dz * inv_n, "b": dz.sum(axis=0) * inv_n}


def validate(data) -> None:
    labels = data.y
    bad = np.flatnonzero((labels < 0) | (labels != np.round(labels)) | (labels >= 2**31))
    if bad.size:
        raise InputError(
            f"softmax needs integer class labels 0 … K − 1; row {bad[0] + 1} of {data.target} "
            f"is {float(labels[bad[0]])!r}",
            where=data.path,
            hint="write the class of each row as 0, 1, 2, …",
        )
    if labels.max() < 1:
        raise InputError("softmax needs at least two classes (every label is 0)", where=data.path)


MODEL = Model(
    name="softmax",
    formula="L = mean(logsumexp(z) − z[y]), z = b + X·W",
    description="multiclass cross-entropy; y holds integer classes 0 … K − 1",
    param_shapes=param_shapes,
    loss=loss,
    native=native,
    numpy_grad=numpy_grad,
    validate=validate,
)
