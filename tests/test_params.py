"""Model parameters: element names, ``--param`` overrides kept as the exact decimals written
(a float given as a param is the binary number it is), one clear error for a bad override, and
the rounding each dtype makes of them measured against what was written."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import gradcmp
from gradcmp.dtypes import FLOAT32
from gradcmp.errors import UsageError
from gradcmp.params import Params, element_names


def params() -> Params:
    return Params.from_arrays({"theta0": np.zeros(()), "w": np.zeros(3), "W": np.zeros((2, 2))})


def test_element_names():
    assert element_names("theta0", ()) == ["theta0"]
    assert element_names("w", (3,)) == ["w[0]", "w[1]", "w[2]"]
    assert element_names("W", (2, 2)) == ["W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]"]
    assert params().elements()[:2] == ["theta0", "w[0]"]


def test_overrides_keep_exact_decimals():
    p = params().with_overrides(["theta0=0.1", "w=1,2,3", "W[1,0]=-2.5"])
    assert p.values["theta0"] == 0.1
    assert p.exact["theta0"] == (Fraction(1, 10),)
    assert p.values["w"].tolist() == [1, 2, 3]
    assert p.values["W"].tolist() == [[0, 0], [-2.5, 0]]
    # The dtype a backend receives: 0.1 rounded to float32.
    assert p.exact_as_dtype(FLOAT32)["theta0"] == (Fraction(float(np.float32(0.1))),)


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("theta0", "is not NAME=VALUE"),
        ("=1", "is not NAME=VALUE"),
        ("nope=1", "no parameter 'nope'"),
        ("theta0=abc", "not a finite decimal"),
        ("theta0=1e999", "not a finite decimal"),
        ("theta0=nan", "not a finite decimal"),
        ("w=1,2", "2 value(s) for w"),
        ("w[3]=1", "no element [3]"),
        ("W[1]=1", "no element [1]"),
        ("w[0]=1,2", "one element takes one value"),
    ],
)
def test_bad_overrides(assignment, fragment):
    with pytest.raises(UsageError) as info:
        params().with_overrides([assignment])
    assert fragment in str(info.value)


def test_a_decimal_param_rounding_is_measured_against_what_was_written():
    """--param theta1=1e-5 in float32: the input-rounding report measures the float32 value
    against 1/100000 as written (not against its float64 rounding), exactly."""
    from fractions import Fraction

    import numpy as np

    import gradcmp
    from gradcmp.judging.agreement import to_float

    report = gradcmp.compare(
        "data/xy.csv", params=["theta1=1e-5"], backends="native", dtypes="float32"
    )
    written = Fraction(1, 100000)
    received = Fraction(float(np.float32(1e-5)))
    rounding = report.reference.rounding["float32"]
    assert rounding.max_rel == to_float(abs(received - written) / written)
    assert rounding.rounded == 1  # the seed's integers are exact; only theta1 rounds


def test_float_params_are_the_binary_numbers_they_are():
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(), params={"theta0": 0.1}, backends=["native"]
    )
    assert report.reference.rounding["float64"].rounded == 0  # 0.1 as a float is a float64
    assert report.reference.rounding["float32"].rounded == 1
