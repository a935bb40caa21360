"""The exact reference against a plain Fraction evaluation, and its exact symmetries."""

from __future__ import annotations

from fractions import Fraction
from unittest.mock import patch

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcmp.dtypes import FLOAT32, FLOAT64, floor_log2
from gradcmp.models import linear
from gradcmp.reference import exact as exact_module
from gradcmp.reference.exact import ExactColumn, ExactData

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


def brute_force(theta0, theta1, rows, target):
    """The linear model's loss and gradient with one Fraction per operation."""
    n = len(target)
    residuals = [
        theta0 + sum((t * x for t, x in zip(theta1, row)), Fraction(0)) - y
        for row, y in zip(rows, target)
    ]
    loss = sum((r * r for r in residuals), Fraction(0)) / (2 * n)
    grad0 = sum(residuals, Fraction(0)) / n
    grad1 = [
        sum((r * row[j] for r, row in zip(residuals, rows)), Fraction(0)) / n
        for j in range(len(theta1))
    ]
    return loss, grad0, grad1


def exact_data(rows, target) -> ExactData:
    columns = tuple(
        ExactColumn.from_fractions([row[j] for row in rows]) for j in range(len(rows[0]))
    )
    return ExactData(columns, ExactColumn.from_fractions(target))


@st.composite
def problems(draw, values=finite):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 3))
    rows = [[Fraction(draw(values)) for _ in range(d)] for _ in range(n)]
    target = [Fraction(draw(values)) for _ in range(n)]
    theta0 = Fraction(draw(values))
    theta1 = [Fraction(draw(values)) for _ in range(d)]
    return theta0, theta1, rows, target


@settings(max_examples=200, deadline=None)
@given(problems())
def test_linear_exact_equals_brute_force(problem):
    theta0, theta1, rows, target = problem
    loss, grads = linear.exact(
        {"theta0": (theta0,), "theta1": tuple(theta1)}, exact_data(rows, target)
    )
    assert (loss, grads["theta0"][0], grads["theta1"]) == brute_force(*problem)


@settings(max_examples=50, deadline=None)
@given(problems(values=st.decimals(-1000, 1000, places=3, allow_nan=False)))
def test_linear_exact_on_decimals(problem):
    # Decimal inputs (0.001 steps) are not floats: the common denominator is a power of ten.
    theta0, theta1, rows, target = problem
    loss, grads = linear.exact(
        {"theta0": (theta0,), "theta1": tuple(theta1)}, exact_data(rows, target)
    )
    assert (loss, grads["theta0"][0], grads["theta1"]) == brute_force(*problem)


@settings(max_examples=50, deadline=None)
@given(problems(), st.randoms(use_true_random=False), st.integers(-20, 20))
def test_row_permutation_and_power_of_two_scaling(problem, rng, k):
    theta0, theta1, rows, target = problem
    params = {"theta0": (theta0,), "theta1": tuple(theta1)}
    loss, grads = linear.exact(params, exact_data(rows, target))
    order = list(range(len(rows)))
    rng.shuffle(order)
    shuffled = linear.exact(
        params, exact_data([rows[i] for i in order], [target[i] for i in order])
    )
    assert shuffled == (loss, grads)
    # Scaling y and θ by 2**k scales every residual by 2**k: loss by 4**k, gradients by 2**k.
    s = Fraction(2) ** k
    scaled_params = {"theta0": (theta0 * s,), "theta1": tuple(t * s for t in theta1)}
    scaled_loss, scaled_grads = linear.exact(
        scaled_params, exact_data(rows, [t * s for t in target])
    )
    assert scaled_loss == loss * s * s
    assert scaled_grads["theta0"] == [g * s for g in grads["theta0"]]
    assert scaled_grads["theta1"] == [g * s for g in grads["theta1"]]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0, max_value=1e308, exclude_min=True))
def test_floor_log2_and_ulp_match_numpy(x):
    assert floor_log2(Fraction(x)) == int(np.frexp(x)[1]) - 1
    assert FLOAT64.ulp(Fraction(x)) == Fraction(float(np.spacing(x)))
    # numpy calls the spacing at float32's largest finite value inf (the next float is); skip it.
    x32 = np.float32(min(x, 3e38))
    if x32 > 0:
        assert FLOAT32.ulp(Fraction(float(x32))) == Fraction(float(np.spacing(x32)))


def test_exact_column_from_floats_is_exact():
    values = np.array([0.1, -3.0, 2.0**-1074, 1e300, 0.0])
    column = ExactColumn.from_floats(values)
    assert column.fractions() == [Fraction(v) for v in values.tolist()]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True), min_size=1),
    st.data(),
)
def test_exact_data_puts_the_decimal_cells_back_exactly(values, data):
    """The vectorised columns (frexp, shifts, object arrays) equal Fraction() of every value,
    with some cells replaced by decimals as written, over the whole float64 range."""
    from gradcmp.loading.data import Dataset

    column = np.array(values)
    replaced = data.draw(st.dictionaries(st.integers(0, len(values) - 1), st.fractions()))
    dataset = Dataset(
        "<test>",
        ("x",),
        "y",
        column[:, None],
        column[::-1].copy(),
        {(row, "x"): value for row, value in replaced.items()},
    )
    expected = [replaced.get(i, Fraction(v)) for i, v in enumerate(values)]
    for chunk_rows in (3, 1 << 16):  # in parts (one denominator for all), and whole
        with patch.object(exact_module, "CHUNK_ROWS", chunk_rows):
            parts = list(dataset.exact_data().chunks())
        assert [f for p in parts for f in p.columns[0].fractions()] == expected
        assert [f for p in parts for f in p.target.fractions()] == [
            Fraction(v) for v in values[::-1]
        ]
        assert len({p.denominators for p in parts}) == 1


def test_the_reference_summed_in_parts_is_the_reference_summed_whole():
    from helpers import make_problem

    from gradcmp.dtypes import FLOAT32, FLOAT64
    from gradcmp.reference.compute import compute_reference

    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3)) * 2.0 ** rng.integers(-30, 30, (50, 3))
    problem = make_problem(X, X.sum(1) + 1, {"theta0": 0.25, "theta1": [0.5, -1.0, 3.0]})
    whole = compute_reference(problem, [FLOAT32, FLOAT64])
    with patch.object(exact_module, "CHUNK_ROWS", 7):
        parts = compute_reference(
            make_problem(X, X.sum(1) + 1, {"theta0": 0.25, "theta1": [0.5, -1.0, 3.0]}),
            [FLOAT32, FLOAT64],
        )
    assert parts.by_dtype == whole.by_dtype and parts.as_written == whole.as_written
