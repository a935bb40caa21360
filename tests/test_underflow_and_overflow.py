"""Underflow and overflow are judged for what they are: underflow and flush-to-zero (subnormal
squares, products that underflow and then meet a huge factor) are never a false alarm; a value
beyond the dtype's range is inconclusive, not a bug; an overflow of a value that is inside the
range is a disagreement that says so."""

from __future__ import annotations

import numpy as np
import pytest

import gradcmp
from gradcmp.judging.agreement import DISAGREE, INCONCLUSIVE

BACKENDS = ["native", "torch-grad", "jax-grad"]


@pytest.mark.parametrize(
    ("X", "y", "params", "dtype"),
    [
        # squares of 1e-20 are subnormal in float32; XLA on CPU flushes them to zero
        ([1.0, 2.0, 3.0], [1e-20, 2e-20, 3e-20], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-39, 2e-39, 3e-39], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-310, 2e-310, 3e-310], None, "float64"),
        # an underflow in g·r_i, then multiplied by a huge x_ij
        ([2.0**100] * 3, [3 * 2.0**-149] * 3, None, "float32"),
        ([2.0**1000] * 3, [3 * 2.0**-1074] * 3, None, "float64"),
        # θ1_0·x_i0 underflows in the residual, which then meets x_i1 = 2**127
        ([[2.0**-147, 2.0**100]] * 3, [1.0] * 3, {"theta1": [1.125, 0.0]}, "float32"),
    ],
)
def test_underflow_is_never_a_false_alarm(X, y, params, dtype):
    report = gradcmp.compare(
        (np.array(X), np.array(y)), params=params, backends=BACKENDS, dtypes=dtype
    )
    for r in report.results:
        assert r.status == "ok", r.note
        assert r.verdict != DISAGREE, (r.backend, r.why)


def test_overflow_beyond_the_range_is_inconclusive_not_a_bug():
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        params={"theta1": 1e308},
        backends=["native"],
        dtypes="float64",
    )
    (r,) = report.results
    assert r.verdict == INCONCLUSIVE and "beyond float64's range" in r.why
    assert report.exit_code == 0


def test_overflow_inside_the_range_is_a_disagreement_that_says_so():
    # Σr² overflows float32 although the exact mean (1.125e38) fits in it.
    report = gradcmp.compare(
        (np.array([1.5e19, 1.5e19]), np.zeros(2)),
        params={"theta1": 1.0},
        backends=["native"],
        dtypes="float32",
    )
    (r,) = report.results
    assert r.verdict == DISAGREE
    assert "float32 overflowed although the exact value is in its range" in r.why
