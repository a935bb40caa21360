"""Naming the likely bug from a difference's pattern (reference.bug_kinds)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from gradcmp.reference.bug_kinds import bug_kind

TRUTH = {
    "loss": Fraction(37, 8),
    "theta0": Fraction(-3, 4),
    "theta1": Fraction(0),
    "w[0]": Fraction(5, 3),
    "w[1]": Fraction(-1, 7),
}


def scaled(k, truth=TRUTH, as_float=False) -> dict:
    return {name: (float(k * v) if as_float else k * v) for name, v in truth.items()}


@pytest.mark.parametrize(
    "k, rows, expected",
    [
        (2, None, "×2: a missing ½ / a doubled term"),
        (Fraction(1, 2), None, "×½: a missing ½ / a doubled term"),
        (-1, None, "×−1: a sign flip"),
        (4, None, "4× — e.g. summed over 4 shards/steps instead of averaged"),
        (Fraction(1, 4), None, "1/4× — e.g. averaged over 4 shards/steps instead of summed"),
        (
            Fraction(50, 49),
            50,
            "×50/49: n−1 instead of n (Bessel's correction / a mean over n−1), n = 50 rows",
        ),
        (
            Fraction(49, 50),
            50,
            "×49/50: n−1 instead of n (Bessel's correction / a mean over n−1), n = 50 rows",
        ),
    ],
)
def test_one_factor_everywhere_names_the_bug(k, rows, expected):
    assert bug_kind(scaled(k), TRUTH, rows) == expected
    # a backend's floats, with float32-sized noise on top, read the same
    noisy = {name: v * (1 + 3e-8) for name, v in scaled(k, as_float=True).items()}
    assert bug_kind(noisy, TRUTH, rows) == expected


def test_bessel_needs_the_row_count():
    assert bug_kind(scaled(Fraction(50, 49)), TRUTH, None) == ""
    assert bug_kind(scaled(Fraction(50, 49)), TRUTH, 51) == ""


def test_only_the_differing_outputs_count():
    values = dict(TRUTH, loss=2 * TRUTH["loss"])  # the gradient agrees; the loss is doubled
    assert bug_kind(values, TRUTH).startswith("×2")


@pytest.mark.parametrize(
    "values",
    [
        scaled(Fraction(3, 2)),  # no named factor
        dict(scaled(2), **{"w[0]": 3 * TRUTH["w[0]"]}),  # two factors
        dict(TRUTH, theta1=Fraction(1, 3)),  # nonzero where the truth is 0: no factor
        dict(TRUTH, loss=TRUTH["loss"] + Fraction(1, 1000)),  # an added constant
        dict(scaled(2), loss=float("nan")),
        TRUTH,  # nothing differs: nothing to name
    ],
)
def test_an_unpatterned_difference_gets_no_name(values):
    assert bug_kind(values, TRUTH, 10) == ""


def test_outputs_only_one_side_has_are_left_out():
    values = dict(scaled(-1), extra=Fraction(5))
    assert bug_kind(values, TRUTH) == "×−1: a sign flip"
    assert bug_kind({}, TRUTH) == ""
