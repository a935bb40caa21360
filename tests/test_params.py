from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

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
