"""Ranks held against each other (gradcmp/distributed/consensus.py), with no world started.

After an all-reduce every rank holds the same bits; a rank that does not is a finding named by
rank and parameter, whatever rank 0 says against the reference. These tests feed rank_status
gradients as the runner does (rank 0's, and those of the ranks that differ from it) and hold
the statuses and the finding's words."""

from __future__ import annotations

from fractions import Fraction

import pytest

from gradcmp.distributed.consensus import rank_status, ranks_text, same_values
from gradcmp.dtypes import DTYPES
from gradcmp.judging.agreement import AGREE, DISAGREE, measure

TRUTH = {"w[0]": Fraction(-20), "w[1]": Fraction(3, 2), "b": Fraction(-81), "c": Fraction(7)}
F64 = DTYPES["float64"]


def judge(flat: dict[str, float]) -> dict:
    """Each element against TRUTH with a bound of 1e-12: the runner's judge, small."""
    return {
        k: measure(v, TRUTH[k], F64, abs(TRUTH[k]), Fraction(1, 10**12)) for k, v in flat.items()
    }


RIGHT = {k: float(v) for k, v in TRUTH.items()}


def world(size: int) -> dict:
    return {"world_size": size, "engine": "torch.distributed"}


def off(**changes: float) -> dict[str, float]:
    """RIGHT with some elements changed (``w0`` for ``w[0]``)."""
    names = {"w0": "w[0]", "w1": "w[1]", "b": "b", "c": "c"}
    return {**RIGHT, **{names[k]: v for k, v in changes.items()}}


def test_ranks_that_agree_bit_for_bit_are_ok_and_make_no_finding():
    status, errors = rank_status(world(4), RIGHT, {}, judge)
    assert errors == {}
    assert "finding" not in status
    assert status["ranks"] == [{"rank": r, "status": "ok", "verdict": AGREE} for r in range(4)]


def test_one_rank_that_missed_the_all_reduce_is_named_with_its_parameter():
    # Rank 3 kept its own shard's gradient of b: 4 × the reduced one.
    rank3 = off(b=-324.0)
    status, errors = rank_status(world(4), RIGHT, {3: rank3}, judge)
    assert (
        status["finding"] == "rank 3: `b` differs from ranks 0–2: a parameter missed the all-reduce"
    )
    assert [s["status"] for s in status["ranks"]] == ["ok", "ok", "ok", "differs"]
    assert status["ranks"][3] == {
        "rank": 3,
        "status": "differs",
        "parameters": ["b"],
        "verdict": DISAGREE,
    }
    assert status["ranks"][0]["verdict"] == AGREE  # rank 0 alone would have passed
    # The errors returned are the differing rank's: the runner explains them.
    assert errors["b"].ratio > 1 and errors["w[0]"].ratio == 0


def test_a_vector_parameter_is_named_once_whatever_elements_differ():
    status, _ = rank_status(world(4), RIGHT, {2: off(w0=1.0, w1=2.0)}, judge)
    assert (
        status["finding"]
        == "rank 2: `w` differs from ranks 0, 1, 3: a parameter missed the all-reduce"
    )
    assert status["ranks"][2]["parameters"] == ["w"]


def test_rank_0_can_be_the_odd_one():
    """Three ranks agree and rank 0 does not: the finding names rank 0, not the majority
    (each rank's status says how it differs from rank 0, as the table reads it)."""
    others = {r: off(b=-82.0) for r in (1, 2, 3)}
    status, errors = rank_status(world(4), RIGHT, others, judge)
    assert (
        status["finding"] == "rank 0: `b` differs from ranks 1–3: a parameter missed the all-reduce"
    )
    assert [s["status"] for s in status["ranks"]] == ["ok", "differs", "differs", "differs"]
    assert errors["b"].ratio > 1  # ranks 1–3 are off against the reference


def test_two_equal_groups_side_with_rank_0():
    others = {2: off(b=-82.0), 3: off(b=-82.0)}
    status, _ = rank_status(world(4), RIGHT, others, judge)
    assert status["finding"] == (
        "ranks 2, 3: `b` differs from ranks 0, 1: a parameter missed the all-reduce"
    )


def test_every_rank_differing_in_every_parameter_is_said_so():
    others = {r: off(w0=float(r), w1=float(r), b=float(r), c=float(r)) for r in (1, 2, 3)}
    status, _ = rank_status(world(4), RIGHT, others, judge)
    assert status["finding"] == (
        "`b`, `c`, `w` differ on every one of the 4 ranks: "
        "the ranks' gradients were not reduced alike"
    )


def test_several_parameters_missing_the_reduction_are_plural():
    status, _ = rank_status(world(3), RIGHT, {1: off(w0=0.0, b=0.0)}, judge)
    assert status["finding"] == (
        "rank 1: `b`, `w` differ from ranks 0, 2: parameters missed the all-reduce"
    )
    status, _ = rank_status(world(3), RIGHT, {1: off(b=0.0), 2: off(w1=0.0)}, judge)
    assert status["finding"] == (
        "`b`, `w` differ on every one of the 3 ranks: parameters missed the all-reduce"
    )
    status, _ = rank_status(world(2), RIGHT, {1: off(w0=0.0, w1=0.0, b=0.0, c=0.0)}, judge)
    assert status["finding"] == (
        "`b`, `c`, `w` differ on every one of the 2 ranks: "
        "the ranks' gradients were not reduced alike"
    )


def test_the_errors_returned_are_a_disagreeing_ranks_not_merely_the_first_differing():
    """Rank 1 differs by one float64 ulp (within τ), rank 2 by far: the worst is explained."""
    import math

    tiny = off(b=math.nextafter(-81.0, 0.0))
    status, errors = rank_status(world(3), RIGHT, {1: tiny, 2: off(b=0.0)}, judge)
    assert status["ranks"][1]["verdict"] == AGREE and status["ranks"][2]["verdict"] == DISAGREE
    assert errors["b"].abs == 81.0


def test_ranks_that_differ_only_by_a_rounding_are_still_a_finding():
    """An all-reduce hands every rank the same bits: one ulp apart is no longer a reduction,
    even though each rank agrees with the reference."""
    import math

    status, errors = rank_status(world(2), RIGHT, {1: off(b=math.nextafter(-81.0, 0.0))}, judge)
    assert "finding" in status
    assert status["ranks"][1]["verdict"] == AGREE
    assert errors["b"].ratio <= 1


def test_nan_equals_nan_across_ranks():
    """Each rank makes its own NaN (a NaN compares unequal to itself): the same NaN in the same
    place is the same gradient."""
    nan = off(b=float("nan"))
    assert same_values(nan, off(b=float("nan")))
    assert not same_values(nan, RIGHT)
    status, errors = rank_status(world(2), nan, {}, judge)
    assert "finding" not in status and errors == {}


def test_same_values_needs_the_same_elements():
    assert not same_values(RIGHT, {"w[0]": -20.0, "w[1]": 1.5})


@pytest.mark.parametrize(
    "ranks, plural, text",
    [
        ([3], False, "rank 3"),
        ([0, 1], False, "ranks 0, 1"),
        ([2, 0, 1], False, "ranks 0–2"),
        ([0, 2, 5], False, "ranks 0, 2, 5"),
        ([4, 5, 6, 7], False, "ranks 4–7"),
        ([0], True, "ranks 0"),
    ],
)
def test_ranks_text(ranks, plural, text):
    assert ranks_text(ranks, plural=plural) == text
