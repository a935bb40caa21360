"""A result's errors kept as columns (ErrorTable, for many outputs) answer every question a
dict of Error tuples answers, the same way: each Error, the order, the worst output (ties:
the first; a non-finite error first; a NaN left to Python's max), the outputs beyond range,
and the one-line explanation built on them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradcmp.dtypes import DTYPES
from gradcmp.judging.agreement import DISAGREE, INCONCLUSIVE, Error, explain, worst_output
from gradcmp.judging.error_table import FIELDS, ErrorTable


def random_errors(rng, n: int, specials: bool) -> dict[str, Error]:
    errors = {}
    for i in range(n):
        numbers = [float(x) for x in rng.choice([0.0, 0.25, 0.5, 1.0, 2.0, 3.0], size=7)]
        out_of_range = False
        if specials and rng.random() < 0.2:
            numbers[0] = math.inf  # a non-finite error
            out_of_range = bool(rng.random() < 0.5)
        errors[f"w[{i}]"] = Error(*numbers, out_of_range=out_of_range)
    return errors


def as_table(errors: dict[str, Error], exact_every: int = 3) -> ErrorTable:
    """The columns hold some outputs' numbers only through ``exact`` (as judging builds it:
    the exact rule's Errors for the outputs the pre-check left, among them every one beyond
    the dtype's range), the rest directly."""
    names = list(errors)
    columns = [np.array([getattr(errors[k], f) for k in names]) for f in FIELDS]
    exact = {k: e for i, (k, e) in enumerate(errors.items()) if i % exact_every == 0 or e[-1]}
    for k in exact:  # the column's entry is overwritten by the exact Error
        for column in columns:
            column[names.index(k)] = -7.0
    return ErrorTable(names, columns, exact)


@pytest.mark.parametrize("seed", range(40))
def test_every_answer_matches_the_dict(seed):
    rng = np.random.default_rng(seed)
    errors = random_errors(rng, int(rng.integers(1, 30)), specials=seed % 2 == 1)
    table = as_table(errors)
    assert list(table) == list(errors) and len(table) == len(errors)
    assert table == errors and dict(table.items()) == errors
    for k, e in errors.items():
        assert table[k] == e and type(table[k].abs) is float
    names = list(errors)
    subset = names[:: int(rng.integers(1, 4))]
    assert worst_output(table, subset) == worst_output(errors, subset)
    assert worst_output(table, names) == worst_output(errors, names)
    dtype = DTYPES["float32"]
    for verdict in (DISAGREE, INCONCLUSIVE):
        assert explain(table, {k: 1 for k in names}, dtype, 10, verdict) == explain(
            errors, {k: 1 for k in names}, dtype, 10, verdict
        )
    assert "w[0]" in table and "nope" not in table
    assert table.copy() == errors and type(table.copy()) is dict and repr(table) == repr(errors)
    with pytest.raises(KeyError):
        table["nope"]


def test_a_nan_ratio_leaves_the_pick_to_pythons_max():
    errors = {
        "a": Error(1.0, 1.0, 1.0, 1.0, math.nan, 1.0, 1.0),
        "b": Error(1.0, 1.0, 1.0, 1.0, 5.0, 1.0, 1.0),
        "c": Error(1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 1.0),
    }
    table = as_table(errors)
    assert table.largest(None, "ratio", nonfinite_first=False) is None
    # max keeps "a": nothing compares greater than a NaN's key, whatever the order
    assert worst_output(table, list(errors)) == worst_output(errors, list(errors)) == "a"
    assert worst_output(table, ["b", "a", "c"]) == "b"


def test_the_first_of_equal_worst_outputs_is_named_and_a_non_finite_one_comes_first():
    errors = {
        "a": Error(1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0),
        "b": Error(1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0),
        "c": Error(math.inf, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0),
        "d": Error(math.inf, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, out_of_range=True),
    }
    table = as_table(errors, exact_every=2)
    assert worst_output(table, ["a", "b"]) == "a"
    assert worst_output(table, ["b", "a"]) == "b"
    assert worst_output(table, list(errors)) == "c"
    assert table.beyond_range() == ["d"]
