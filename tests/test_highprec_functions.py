"""highprec's elementary functions: values to 55 digits (mpmath at 300 bits), the float64
value, the derivative (mpmath.diff), the running error, and what has no real value."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from gradcmp.reference import highprec as hp

mpmath = pytest.importorskip("mpmath")

# name: (highprec, mpmath, numpy float64 or None, points)
UNARY = {
    "erf": (hp.erf, mpmath.erf, np.vectorize(math.erf), [-2.5, -0.3, 0.1, 1.7]),
    "erfc": (hp.erfc, mpmath.erfc, np.vectorize(math.erfc), [-1.0, 0.5, 3.0, 10.0]),
    "sin": (hp.sin, mpmath.sin, np.sin, [-2.0, 0.3, 1.0, 10.0]),
    "cos": (hp.cos, mpmath.cos, np.cos, [-2.0, 0.3, 1.0, 10.0]),
    "tan": (hp.tan, mpmath.tan, np.tan, [-1.2, 0.3, 1.0, 4.0]),
    "sinh": (hp.sinh, mpmath.sinh, np.sinh, [-3.0, 0.25, 2.0]),
    "cosh": (hp.cosh, mpmath.cosh, np.cosh, [-3.0, 0.25, 2.0]),
    "arcsin": (hp.arcsin, mpmath.asin, np.arcsin, [-0.9, 0.2, 0.7]),
    "arccos": (hp.arccos, mpmath.acos, np.arccos, [-0.9, 0.2, 0.7]),
    "arctan": (hp.arctan, mpmath.atan, np.arctan, [-5.0, 0.3, 2.0]),
    "arcsinh": (hp.arcsinh, mpmath.asinh, np.arcsinh, [-4.0, 0.5, 3.0]),
    "arccosh": (hp.arccosh, mpmath.acosh, np.arccosh, [1.5, 3.0, 10.0]),
    "arctanh": (hp.arctanh, mpmath.atanh, np.arctanh, [-0.9, 0.1, 0.5]),
    "log2": (hp.log2, lambda t: mpmath.log(t, 2), np.log2, [0.3, 2.0, 1000.0]),
    "log10": (hp.log10, mpmath.log10, np.log10, [0.3, 2.0, 1000.0]),
    "exp2": (hp.exp2, lambda t: mpmath.power(2, t), np.exp2, [-3.5, 0.5, 10.0]),
    "rsqrt": (hp.rsqrt, lambda t: 1 / mpmath.sqrt(t), lambda t: 1 / np.sqrt(t), [0.25, 2.0, 7.0]),
    "reciprocal": (hp.reciprocal, lambda t: 1 / t, lambda t: 1 / t, [-3.0, 0.7, 5.0]),
    "softplus": (
        hp.softplus,
        lambda t: mpmath.log(1 + mpmath.exp(t)),
        lambda t: np.logaddexp(0, t),
        [-30.0, -1.0, 0.5, 25.0],
    ),
    "expm1": (hp.expm1, mpmath.expm1, np.expm1, [-1e-8, 0.5, 3.0]),
    "log1p": (hp.log1p, mpmath.log1p, np.log1p, [-0.5, 1e-9, 4.0]),
}
BINARY = {  # highprec(x, y), mpmath(x, y), float64(x, y)
    "arctan2": (hp.arctan2, mpmath.atan2, np.arctan2),
    "hypot": (hp.hypot, mpmath.hypot, np.hypot),
    "pow": (hp.pow_, mpmath.power, np.power),
}
NO_DATA = (np.zeros((1, 1)), np.zeros(1))  # X and y: these losses use neither
X_BINARY, Y_BINARY = [0.5, -1.5, 2.0, 3.25], [1.25, 0.75, -0.5, 2.0]


def _close(mine, theirs, digits=55) -> bool:
    """|mine − theirs| ≤ |theirs|·10⁻ᵈ, both compared as exact rationals."""
    exact = hp.to_fraction(mpmath.mpf(theirs))
    return abs(hp.to_fraction(mine) - exact) <= abs(exact) / 10**digits


@pytest.mark.parametrize("name", UNARY)
def test_values_to_55_digits_and_the_float64_value(name):
    function, reference, float64, points = UNARY[name]
    with hp.working_precision():
        z = function(hp.leaf(np.array(points)))
    with mpmath.workprec(300):
        for mine, x in zip(z.v, points):
            assert _close(mine, reference(mpmath.mpf(x))), (name, x)
    np.testing.assert_allclose(z.f, float64(np.array(points)), rtol=4e-16, atol=0)


@pytest.mark.parametrize("name", BINARY)
def test_binary_values_to_55_digits(name):
    function, reference, float64 = BINARY[name]
    x = np.abs(X_BINARY) if name == "pow" else np.array(X_BINARY)  # real powers: x > 0
    with hp.working_precision():
        z = function(hp.leaf(x), hp.leaf(np.array(Y_BINARY)))
    with mpmath.workprec(300):
        for mine, s, t in zip(z.v, x, Y_BINARY):
            assert _close(mine, reference(mpmath.mpf(s), mpmath.mpf(t))), (name, s, t)
    np.testing.assert_allclose(z.f, float64(x, np.array(Y_BINARY)), rtol=4e-16, atol=0)


@pytest.mark.parametrize("name", UNARY)
def test_gradients_match_mpmath_diff(name):
    function, reference, _, points = UNARY[name]
    out, grads = hp.value_and_grad(
        lambda p, X, y, xp: hp.sum_(function(p["a"])), {"a": np.array(points)}, *NO_DATA
    )
    with mpmath.workprec(400):
        for mine, x in zip(grads["a"].v, points):
            assert _close(mine, mpmath.diff(reference, mpmath.mpf(x)), digits=50), (name, x)


@pytest.mark.parametrize("name", BINARY)
def test_binary_gradients_match_mpmath_diff(name):
    function, reference, _ = BINARY[name]
    x = np.abs(X_BINARY) if name == "pow" else np.array(X_BINARY)
    y = np.array(Y_BINARY)
    out, grads = hp.value_and_grad(
        lambda p, X, Y, xp: hp.sum_(function(p["x"], p["y"])), {"x": x, "y": y}, *NO_DATA
    )
    with mpmath.workprec(400):
        for i, (s, t) in enumerate(zip(x, y)):
            s, t = mpmath.mpf(s), mpmath.mpf(t)
            assert _close(grads["x"].v[i], mpmath.diff(reference, (s, t), (1, 0)), 50)
            assert _close(grads["y"].v[i], mpmath.diff(reference, (s, t), (0, 1)), 50)


def test_a_function_adds_its_slope_times_the_error_and_libm_ulps():
    """sin(3x) for an exact input x: the product's rounding |3x|, through the slope |cos 3x|,
    plus LIBM_ULPS roundings of |sin 3x| and as many possible underflows."""
    x = np.array([0.3, -2.0, 7.0])
    with hp.working_precision():
        z = hp.sin(hp.multiply(hp.leaf(x), 3.0))
    expected = np.abs(np.cos(3 * x)) * (np.abs(3 * x) + 1j) + hp.LIBM_ULPS * (
        np.abs(np.sin(3 * x)) + 1j
    )
    np.testing.assert_allclose(z.e, expected, rtol=1e-15)
    np.testing.assert_allclose(
        z.a, np.maximum(np.abs(np.sin(3 * x)), np.abs(np.cos(3 * x) * 3 * x))
    )


def test_the_bound_covers_numpys_float32():
    """numpy's float32 functions, on float32 inputs, within the running bound of the exact
    value (u = 2⁻²⁴, η = 2⁻¹²⁶)."""
    rng = np.random.default_rng(5)
    points = rng.uniform(-0.95, 0.95, size=50).astype(np.float32)
    u, eta = 2.0**-24, 2.0**-126
    for name in ("sin", "cos", "tan", "sinh", "cosh", "arcsin", "arccos", "arctan", "arctanh"):
        function, _, float64, _ = UNARY[name]
        with hp.working_precision():
            z = function(hp.leaf(points))
        got = float64(points).astype(np.float32).astype(np.float64)  # numpy's own float32
        got32 = getattr(np, name)(points).astype(np.float64)
        for value in (got, got32):
            error = np.array([abs(Fraction(g) - hp.to_fraction(v)) for g, v in zip(value, z.v)])
            assert all(error <= [Fraction(b) for b in z.e.real * u + z.e.imag * eta]), name


@pytest.mark.parametrize(
    ("function", "points", "expected"),
    [
        (hp.floor, [-1.5, -0.5, 0.0, 2.7], [-2, -1, 0, 2]),
        (hp.ceil, [-1.5, -0.5, 0.0, 2.2], [-1, 0, 0, 3]),
        (hp.round_, [0.5, 1.5, 2.5, -0.5, -2.6], [0, 2, 2, 0, -3]),  # ties to even
        (hp.trunc, [-1.7, 1.7, 0.2], [-1, 1, 0]),
        (hp.sign, [-3.0, 0.0, 1e-300], [-1, 0, 1]),
    ],
)
def test_steps_are_exact_with_no_gradient(function, points, expected):
    out, grads = hp.value_and_grad(
        lambda p, X, y, xp: hp.sum_(hp.multiply(function(p["a"]), p["a"])),
        {"a": np.array(points)},
        *NO_DATA,
    )
    with hp.working_precision():
        z = function(hp.leaf(np.array(points)))
    assert [hp.to_fraction(v) for v in z.v] == expected
    assert not z.e.any()
    # d/da [step(a)·a] = step(a): the step itself contributes nothing
    assert [hp.to_fraction(v) for v in grads["a"].v] == expected


@pytest.mark.parametrize(
    ("function", "point"),
    [
        (hp.arcsin, 1.5),
        (hp.arccos, -1.5),
        (hp.arccosh, 0.5),
        (hp.arctanh, 2.0),
        (hp.log2, -1.0),
        (hp.log10, -1.0),
        (hp.rsqrt, -4.0),
        (lambda x: hp.pow_(x, hp.constant(0.5)), -2.0),
    ],
)
def test_no_real_value_is_unsupported_and_nan_in_ieee_mode(function, point):
    with hp.working_precision(), pytest.raises(hp.UnsupportedOperation):
        function(hp.leaf(np.array([0.5, point])))
    with hp.working_precision(ieee=True):
        z = function(hp.leaf(np.array([point])))
    assert np.isnan(z.f).all() and np.isinf(z.e.real).all() and np.isinf(z.a).all()


@pytest.mark.parametrize("expression", ["hp.arctanh(p['a'])", "hp.rsqrt(p['a'] - 0.5)"])
def test_a_pole_is_not_differentiable(expression):
    loss = eval(f"lambda p, X, y, xp: hp.sum_({expression})")
    with pytest.raises(hp.NotDifferentiable):
        hp.value_and_grad(loss, {"a": np.array([0.5, 1.0])}, *NO_DATA)


def test_softplus_threshold_is_torchs():
    with hp.working_precision():
        x = hp.leaf(np.array([1.0, 25.0]))
        z = hp.softplus(x, threshold=20.0)
        assert hp.to_fraction(z.v[1]) == 25  # x itself above the threshold, as torch
        assert z.f[0] == np.logaddexp(0, 1.0)
        half = hp.softplus(x, beta=0.5)
    np.testing.assert_allclose(half.f, np.logaddexp(0, 0.5 * x.f) / 0.5, rtol=1e-15)
