"""The seed's model: linear regression, loss = mean((theta0 + X·theta1 − y)²) / 2."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..reference.exact import ExactData
from .base import DataShape, Model


def param_shapes(shape: DataShape) -> dict[str, tuple[int, ...]]:
    # One feature: theta0, theta1 as in the seed. d features: theta1[0] … theta1[d-1].
    return {"theta0": (), "theta1": () if shape.features == 1 else (shape.features,)}


def loss(params, X, y, xp):
    theta0, theta1 = params["theta0"], params["theta1"]
    prediction = theta0 + (X[:, 0] * theta1 if theta1.ndim == 0 else X @ theta1)
    residual = prediction - y
    return xp.mean(residual * residual) / 2


def native(params, rows, target, scalar):
    """The seed's hand-derived gradient: dL/dθ0 = mean(r), dL/dθ1[j] = mean(r·x_j)."""
    (theta0,), theta1 = params["theta0"], params["theta1"]
    d = len(theta1)
    loss_sum, grad0, grad1 = scalar(0), scalar(0), [scalar(0)] * d
    for x, y in zip(rows, target):
        prediction = theta0
        for j in range(d):
            prediction = prediction + theta1[j] * x[j]
        r = prediction - y  # d(r²/2)/d(prediction)
        loss_sum = loss_sum + r * r
        grad0 = grad0 + r
        for j in range(d):
            grad1[j] = grad1[j] + r * x[j]
    # The mean as a product with 1/n, as the seed wrote it (its float64 θ1 gradient,
    # −81.66666666666666, is −490·(1/6); −490/6 would round to −81.66666666666667).
    inv_n = scalar(1) / scalar(len(target))
    half = scalar(0.5)
    return (
        half * loss_sum * inv_n,
        {"theta0": [grad0 * inv_n], "theta1": [g * inv_n for g in grad1]},
    )


def numpy_grad(params, X, y):
    """The same gradient as ``native``, vectorised: r = θ0 + X·θ1 − y, g = Xᵀr / n."""
    theta0, theta1 = params["theta0"], params["theta1"]
    residual = theta0 + (X[:, 0] * theta1 if theta1.ndim == 0 else X @ theta1) - y
    inv_n = X.dtype.type(1) / X.dtype.type(len(y))
    grad1 = X.T @ residual * inv_n
    return (
        residual @ residual * inv_n / 2,
        {"theta0": residual.sum() * inv_n, "theta1": grad1[0] if theta1.ndim == 0 else grad1},
    )


def exact(params, data: ExactData):
    """Loss and gradient in exact rationals, with integers over one common denominator.

    r_i = θ0 + Σ_j θ1_j·x_ij − y_i is computed as an integer R_i = r_i·L; then
    loss = ΣR_i² / (2nL²), dL/dθ0 = ΣR_i / (nL), dL/dθ1_j = ΣR_i·X_ij / (nL·D_j), where X_ij/D_j
    is column j over its common denominator.
    """
    return _sums(params, data, absolute=False)


def magnitudes(params, data: ExactData):
    """The agreement rule's M for each output: the same sums with every term taken in absolute
    value — a_i = |θ0| + Σ_j|θ1_j·x_ij| + |y_i| in place of r_i, |x_ij| in place of x_ij."""
    return _sums(params, data, absolute=True)


def underflow_weights(params, data: ExactData):
    """W of the agreement rule: how many underflow errors (each at most 2**emin, flushed or
    not) reach each output, weighted by what multiplies them afterwards.

    One row's residual takes d + 2 operations and its d + 1 inputs may be flushed (x_ij then
    weighs |θ1_j|): ρ = d + 3 + Σ_j|θ1_j| units. The loss squares it (×2|r_i| ≤ 2a_i; the /2n
    after only shrinks it), θ0 takes it as is, θ1_j multiplies it by x_ij; each adds a few
    operations of its own (products, the sum's additions, the mean's scaling).
    """
    theta1 = params["theta1"]
    n = data.rows
    rho = len(theta1) + 3 + sum(abs(t) for t in theta1)
    sums = _integer_sums(params, data, absolute=True)
    column_denominators, _ = data.denominators
    sum_a = Fraction(sums.residuals, sums.L)  # Σ a_i, exactly, in integers
    loss_weight = 2 * rho * sum_a + 3 * n + 2  # Σ(2·a_i·ρ + 3) + 2
    grad0_weight = n * (rho + 3) + 2
    grad1_weights = [  # Σ((ρ + 2)·|x_ij| + a_i + 3) + 2
        (rho + 2) * Fraction(total, denominator) + sum_a + 3 * n + 2
        for total, denominator in zip(sums.features, column_denominators)
    ]
    return loss_weight, {"theta0": [grad0_weight], "theta1": grad1_weights}


def rounding_depth(n_features: int) -> dict[str, int]:
    """c of the agreement rule: roundings on one row's path to each output, plus one spare.

    Residual r_i: d products and d + 1 additions, γ_{d+2} relative to a_i. Loss: r̂_i² doubles
    that and rounds once more, then the mean divides (≤ 2 roundings: by n, or times fl(1/n)).
    θ0: r̂_i times the mean's fl(1/n) and the ½·2 of the square's derivative (≤ 2 roundings),
    a final ·fl(1/n) where the sum comes first (native). θ1: one more product, by x_ij.
    """
    d = n_features
    return {"loss": 2 * (d + 2) + 1 + 2 + 1, "theta0": (d + 2) + 2 + 1, "theta1": (d + 2) + 3 + 1}


@dataclass(frozen=True)
class _Sums:
    """Integer sums over the rows: r_i = R_i / L (or a_i, when absolute), X_ij / D_j."""

    L: int
    residuals: int  # Σ R_i
    squares: int  # Σ R_i²
    products: tuple[int, ...]  # Σ R_i·X_ij per column j
    features: tuple[int, ...]  # Σ X_ij per column j (|X_ij| when absolute)


def _integer_sums(params, data: ExactData, absolute: bool) -> _Sums:
    """The sums every output needs, in one pass over the data's parts (ChunkedExactData
    makes them a part at a time). Kept with the data: the magnitudes and the underflow
    weights both need the absolute ones."""
    key = ("linear sums", absolute, tuple(params["theta0"]), tuple(params["theta1"]))
    if key not in data.cache:
        data.cache[key] = _compute_sums(params, data, absolute)
    return data.cache[key]


def _compute_sums(params, data, absolute: bool) -> _Sums:
    """R_i = c0 − cy·Y_i + Σ_j c_j·X_ij in numpy object arrays of Python ints: exact, with
    the loops in C."""
    (theta0,), theta1 = params["theta0"], params["theta1"]
    column_denominators, target_denominator = data.denominators
    L = math.lcm(
        theta0.denominator,
        target_denominator,
        *(t.denominator * d for t, d in zip(theta1, column_denominators)),
    )
    c0 = theta0.numerator * (L // theta0.denominator)
    coefficients = [
        t.numerator * (L // (t.denominator * d)) for t, d in zip(theta1, column_denominators)
    ]
    cy = L // target_denominator
    if absolute:
        c0, coefficients = abs(c0), [abs(c) for c in coefficients]
    d = len(coefficients)
    residuals, squares, products, features = 0, 0, [0] * d, [0] * d
    for part in data.chunks():
        if absolute:
            R = c0 + cy * np.abs(part.target.numerators)
            X = [np.abs(col.numerators) for col in part.columns]
        else:
            R = c0 - cy * part.target.numerators
            X = [col.numerators for col in part.columns]
        for c, xs in zip(coefficients, X):
            if c:
                R = R + c * xs
        residuals += int(R.sum())
        squares += int(np.dot(R, R))
        for j, xs in enumerate(X):
            products[j] += int(np.dot(R, xs))
            features[j] += int(xs.sum())
    return _Sums(L, residuals, squares, tuple(products), tuple(features))


def _sums(params, data: ExactData, absolute: bool):
    sums = _integer_sums(params, data, absolute)
    n, L = data.rows, sums.L
    column_denominators, _ = data.denominators
    loss_value = Fraction(sums.squares, 2 * n * L * L)
    grad0 = Fraction(sums.residuals, n * L)
    grad1 = [
        Fraction(total, n * L * denominator)
        for total, denominator in zip(sums.products, column_denominators)
    ]
    return loss_value, {"theta0": [grad0], "theta1": grad1}


MODEL = Model(
    name="linear",
    formula="L = mean((theta0 + X·theta1 − y)²) / 2",
    description="linear regression with squared error (the seed's model); any number of features",
    param_shapes=param_shapes,
    loss=loss,
    native=native,
    numpy_grad=numpy_grad,
    exact=exact,
    magnitudes=magnitudes,
    rounding_depth=rounding_depth,
    underflow_weights=underflow_weights,
    reference_method="exact rational arithmetic (integers over a common denominator)",
)
