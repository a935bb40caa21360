"""The high-precision reference for any loss: its values, its bound, its fallback."""

from __future__ import annotations

import dataclasses
import textwrap
from fractions import Fraction

import numpy as np
import pytest
from helpers import make_problem
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcmp
from gradcmp import highprec
from gradcmp.agreement import DISAGREE, INCONCLUSIVE
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.models import get_model
from gradcmp.problem import Problem
from gradcmp.reference import compute_reference
from gradcmp.runner import OK, run

# The linear model with its exact reference taken away: it goes through highprec instead.
GENERIC_LINEAR = dataclasses.replace(
    get_model("linear"), exact=None, magnitudes=None, rounding_depth=None, underflow_weights=None
)

LOGISTIC = textwrap.dedent(
    '''
    PARAMS = {"b": 0.1, "w": [0.5, -0.25]}

    def loss(params, X, y, xp):
        """mean(log(1 + exp(z)) − y·z), z = b + X·w: binary cross-entropy with logits"""
        z = params["b"] + X @ params["w"]
        return xp.mean(xp.logaddexp(0.0, z) - y * z)
    '''
)


def test_highprec_matches_the_exact_reference_to_50_digits():
    rng = np.random.default_rng(3)
    problem = make_problem(
        rng.normal(size=(40, 3)), rng.normal(size=40), {"theta0": 0.3, "theta1": rng.normal(size=3)}
    )
    exact = compute_reference(problem, [FLOAT64]).by_dtype["float64"]
    generic = compute_reference(Problem(GENERIC_LINEAR, problem.data, problem.params), [FLOAT64])
    assert generic.name == "highprec"
    for name, value in generic.by_dtype["float64"].outputs().items():
        assert abs(value - exact.outputs()[name]) <= abs(exact.outputs()[name]) * Fraction(
            1, 10**50
        )


def test_highprec_gradient_of_logistic_matches_the_formula():
    # d/dz [log(1 + e^z) − y·z] = σ(z) − y, so ∂L/∂w = mean((σ(z) − y)·x).
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 2)), (rng.random(30) < 0.5).astype(float)
    namespace: dict = {}
    exec(LOGISTIC, namespace)
    params = {"b": np.array(0.1), "w": np.array([0.5, -0.25])}
    out, grads = highprec.value_and_grad(namespace["loss"], params, X, y)
    z = 0.1 + X @ params["w"]
    sigma = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(float(out.v[()]), np.mean(np.logaddexp(0, z) - y * z), rtol=1e-14)
    np.testing.assert_allclose(
        grads["w"].v.astype(float), ((sigma - y)[:, None] * X).mean(0), rtol=1e-13
    )


@st.composite
def small_problems(draw):
    n = draw(st.integers(1, 200))
    scale = 10.0 ** draw(st.integers(-4, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    X = rng.normal(size=(n, 2)) * scale
    cancel = draw(st.booleans())
    w = rng.normal(size=2) / scale
    y = X @ w + 0.5 + (rng.normal(size=n) * 1e-6 if cancel else rng.normal(size=n))
    return X, y, w


@settings(max_examples=8)
@given(case=small_problems())
def test_no_false_alarms_with_the_running_bound(tmp_path_factory, case):
    X, y, w = case
    linear = make_problem(X, y, {"theta0": 0.5, "theta1": w})
    problems = [Problem(GENERIC_LINEAR, linear.data, linear.params)]
    path = tmp_path_factory.mktemp("loss") / "logistic.py"
    path.write_text(LOGISTIC)
    labels = (y > np.median(y)).astype(float)
    report = gradcmp.compare(
        (X, labels), loss=path, params={"w": w}, backends=["torch-grad", "jax-grad"]
    )
    for result in [
        *run(problems[0], ["native", "torch-grad", "jax-grad"], [FLOAT32, FLOAT64]).results,
        *report.results,
    ]:
        assert result.status == OK, result.note
        assert result.verdict != DISAGREE, (result.backend, result.dtype, result.why)


def test_an_operation_beyond_highprec_falls_back_to_float64_without_a_bound(tmp_path):
    path = tmp_path / "erf.py"
    path.write_text(
        textwrap.dedent(
            """
        PARAMS = {"w": 0.5}

        def loss(params, X, y, xp):
            return xp.mean(xp.sin(params["w"] * X[:, 0]) - y)
        """
        )
    )
    report = gradcmp.compare(gradcmp.data.bundled_path(), loss=path, backends=["jax-grad"])
    assert report.reference.name == "float64"
    assert "xp.sin" in report.reference.method
    assert {r.verdict for r in report.results} == {INCONCLUSIVE}
    assert report.exit_code == 0


@pytest.mark.parametrize("power", [2, 3, 0.5])
def test_powers(power):
    x = np.array([1.5, 2.0, 4.0])
    out, grads = highprec.value_and_grad(
        lambda p, X, y, xp: xp.sum(p["a"] ** power), {"a": x}, x[:, None], x
    )
    np.testing.assert_allclose(grads["a"].v.astype(float), power * x ** (power - 1), rtol=1e-15)
