"""working_precision(ieee=True), the framework tracers' semantics: IEEE values where the
reference would raise, companions that stay defined, and the default left as it was."""

from __future__ import annotations

import gmpy2
import numpy as np
import pytest

from gradcmp.reference import highprec as hp


def _ieee(op, *values):
    with hp.working_precision(ieee=True):
        return op(*(hp.leaf(np.asarray(v, dtype=np.float64)) for v in values))


@pytest.mark.parametrize(
    ("op", "values", "expected"),
    [
        (hp.log, [0.0, -1.0], [-np.inf, np.nan]),
        (lambda x: hp.divide(1.0, x), [0.0], [np.inf]),
        (lambda x: hp.divide(x, x), [0.0], [np.nan]),
        (hp.sqrt, [-1.0], [np.nan]),
        (hp.log1p, [-1.0, -2.0], [-np.inf, np.nan]),
        (hp.arctanh, [1.0, -1.0], [np.inf, -np.inf]),
        (hp.rsqrt, [0.0], [np.inf]),
        (lambda x: hp.pow_(x, -1.0), [0.0], [np.inf]),
    ],
)
def test_ieee_values_instead_of_exceptions(op, values, expected):
    z = _ieee(op, values)
    np.testing.assert_array_equal(z.f, expected)
    assert not np.isnan(z.e.real).any() and not np.isnan(z.e.imag).any() and not np.isnan(z.a).any()
    nan = np.isnan(z.f)
    assert np.isinf(z.e.real[nan]).all() and np.isinf(z.e.imag[nan]).all()
    assert np.isinf(z.a[nan]).all()


def test_the_default_still_raises():
    with hp.working_precision(), pytest.raises(ArithmeticError):
        hp.log(hp.leaf(np.array([0.0])))
    with hp.working_precision(), pytest.raises(hp.UnsupportedOperation):
        hp.log(hp.leaf(np.array([-1.0])))


def test_the_mode_is_restored_after_nesting():
    before = gmpy2.get_context().precision
    with hp.working_precision(ieee=True):
        with hp.working_precision():
            with pytest.raises(ArithmeticError):
                hp.log(hp.leaf(np.array(0.0)))
        assert np.isneginf(hp.log(hp.leaf(np.array(0.0))).f)
    assert not hp.tracked._mode.ieee
    assert gmpy2.get_context().precision == before


def test_an_exact_infinity_has_no_error_and_an_uncertain_one_no_bound():
    """log of an exact 0 is exactly −∞ (every backend gets it); log of a 0 that carries
    rounding errors (a backend may get a tiny positive number) has no bound."""
    with hp.working_precision(ieee=True):
        exact = hp.log(hp.leaf(np.array([0.0])))
        p = hp.multiply(hp.leaf(np.array([0.1])), 3.0)
        uncertain = hp.log(hp.subtract(p, p))  # 0, with the product's rounding in its error
    assert exact.e[0] == 0
    assert np.isneginf(uncertain.f[0]) and np.isinf(uncertain.e.real[0])


def test_torchs_clamped_log_of_a_saturated_probability_is_finite_with_a_bound():
    """BCE as torch computes it: max(log p, −100); where p is 0 the −100 is taken, with its
    own companions, even when log p's bound is infinite."""
    with hp.working_precision(ieee=True):
        p = hp.leaf(np.array([0.0, 0.25, 1.0]))
        q = hp.subtract(1.0, p)
        for z in (hp.maximum(hp.log(p), -100.0), hp.clip(hp.log(q), min=-100.0)):
            assert np.isfinite(z.f).all() and np.isfinite(z.e).all() and np.isfinite(z.a).all()
        assert hp.maximum(hp.log(p), -100.0).f[0] == -100
        zero = hp.subtract(hp.multiply(p, 3.0), hp.multiply(p, 3.0))  # inexact zeros
        z = hp.maximum(hp.log(zero), -100.0)
        assert z.f.tolist() == [-100.0] * 3 and z.e.tolist() == [0j] * 3
        w = hp.where(p.f > 0, hp.log(p), 0.0)
        assert np.isfinite(w.e).all()


def test_a_masked_softmax_keeps_finite_bounds():
    """Attention's causal mask: −∞ scores, exp(−∞) = 0, and the row's bounds stay finite."""
    with hp.working_precision(ieee=True):
        scores = hp.leaf(np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]))
        masked = hp.where(np.array([[True, True, False], [True, False, False]]), scores, -np.inf)
        shifted = hp.subtract(masked, hp.max_(masked, axis=-1, keepdims=True))
        weights = hp.exp(shifted)
        softmax = hp.divide(weights, hp.sum_(weights, axis=-1, keepdims=True))
    assert softmax.f[0, 2] == 0 and softmax.f[1, 0] == 1
    np.testing.assert_allclose(softmax.f[0, :2], np.exp([1, 2]) / np.exp([1, 2]).sum())
    assert np.isfinite(softmax.e).all() and np.isfinite(softmax.a).all()


def test_nan_propagates_through_max_and_maximum():
    with hp.working_precision(ieee=True):
        nan = hp.divide(hp.leaf(np.array([0.0, 1.0])), hp.leaf(np.array([0.0, 1.0])))
        assert np.isnan(hp.maximum(nan, 5.0).f[0]) and hp.maximum(nan, 5.0).f[1] == 5
        assert np.isnan(hp.max_(nan).f) and np.isnan(hp.min_(nan).f)
        assert np.isinf(hp.max_(nan).e.real)


def test_an_infinite_sum_is_exact():
    with hp.working_precision(ieee=True):
        total = hp.sum_(hp.where(np.array([True, False, True]), hp.leaf(np.ones(3)), -np.inf))
        running = hp.cumulative_sum(hp.leaf(np.array([1.0, -np.inf, 2.0])))
    assert np.isneginf(total.f) and total.e == 0
    assert running.f.tolist() == [1.0, -np.inf, -np.inf] and np.isfinite(running.e).all()
