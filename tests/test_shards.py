"""How rows are shared out among ranks (gradcmp/distributed/shards.py), with no world started:
contiguous blocks the way users split them, the padding JAX needs, each rank's weight, and
the check that a loss is a mean or a sum over rows before it is split at all."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gradcmp.distributed.shards import MEAN, SUM, Shards, row_reduction


@pytest.mark.parametrize(
    "rows, world_size, sizes",
    [
        (6, 1, [6]),
        (6, 2, [3, 3]),
        (6, 4, [2, 2, 1, 1]),  # the first n mod N ranks one row longer
        (6, 8, [1, 1, 1, 1, 1, 1, 0, 0]),  # more ranks than rows: the last ones hold none
        (7, 3, [3, 2, 2]),
        (0, 2, [0, 0]),
    ],
)
def test_split_is_contiguous_like_numpy_array_split(rows, world_size, sizes):
    shards = Shards.split(rows, world_size)
    assert shards.sizes == sizes
    expected = [
        (int(a[0]), int(a[-1]) + 1) for a in np.array_split(np.arange(rows), world_size) if len(a)
    ]
    assert [b for b in shards.bounds if b[1] > b[0]] == expected
    # Contiguous, in order, every row once.
    assert shards.bounds[0][0] == 0 and shards.bounds[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(shards.bounds, shards.bounds[1:]))


def test_even_and_longest():
    assert Shards.split(6, 2).even and not Shards.split(6, 4).even
    assert Shards.split(6, 4).longest == 2 and Shards.split(6, 8).longest == 1


def test_padded_index_pads_every_block_to_the_longest_with_row_0_and_drops_no_row():
    index, real = Shards.split(6, 4).padded_index()
    # blocks [0, 1], [2, 3], [4] + pad, [5] + pad: every device the same length (2)
    assert index.tolist() == [0, 1, 2, 3, 4, 0, 5, 0]
    assert real.tolist() == [True, True, True, True, True, False, True, False]
    assert sorted(index[real].tolist()) == list(range(6))


def test_padded_index_of_empty_shards_is_all_padding():
    index, real = Shards.split(6, 8).padded_index()
    assert index.tolist() == [0, 1, 2, 3, 4, 5, 0, 0]
    assert real.tolist() == [True] * 6 + [False] * 2


def test_padded_index_of_even_shards_is_the_rows_as_they_are():
    index, real = Shards.split(6, 2).padded_index()
    assert index.tolist() == list(range(6)) and real.all()


def test_weights_of_a_mean_add_up_to_one_and_a_sum_weighs_every_rank_fully():
    shards = Shards.split(6, 4)
    means = [shards.weight(r, MEAN) for r in range(4)]
    assert means == [Fraction(1, 3), Fraction(1, 3), Fraction(1, 6), Fraction(1, 6)]
    assert sum(means) == 1
    assert [shards.weight(r, SUM) for r in range(4)] == [1, 1, 1, 1]
    # A rank without rows has no share of a mean.
    assert Shards.split(6, 8).weight(7, MEAN) == 0


def test_describe():
    assert Shards.split(6, 4).describe() == "6 rows over 4 ranks: 2, 2, 1, 1"


# row_reduction: loss_of(start, stop) is the loss on rows [start, stop).

VALUES = np.array([84.5, 98.0, 200.0, 220.5, 312.5, 450.0])  # the seed's per-row losses at θ = 0


def on_rows(function):
    return lambda start, stop: float(function(VALUES[start:stop]))


@pytest.mark.parametrize("world_size", [2, 3, 4, 8])
def test_a_mean_over_rows_is_a_mean(world_size):
    assert row_reduction(on_rows(np.mean), 6, world_size) == MEAN


@pytest.mark.parametrize("world_size", [2, 3, 4, 8])
def test_a_sum_over_rows_is_a_sum(world_size):
    assert row_reduction(on_rows(np.sum), 6, world_size) == SUM


def test_a_mean_plus_a_term_without_rows_is_still_a_mean():
    """A regulariser adds the same term to every shard's loss: weights that add up to 1 keep it
    once (a sum over rows would count it N times, so that is neither)."""
    assert row_reduction(on_rows(lambda v: np.mean(v) + 7.0), 6, 4) == MEAN
    assert row_reduction(on_rows(lambda v: np.sum(v) + 7.0), 6, 4) is None


@pytest.mark.parametrize(
    "statistic",
    [
        np.median,
        lambda v: np.mean((v - np.mean(v)) ** 2),  # the batch's own mean: a shard's is another
        lambda v: np.max(v),
    ],
    ids=["median", "centred", "max"],
)
def test_a_batch_statistic_is_neither(statistic):
    assert row_reduction(on_rows(statistic), 6, 2) is None
    assert row_reduction(on_rows(statistic), 6, 4) is None


def test_one_rank_takes_any_loss_as_it_is():
    """With one rank there is nothing to split: every loss is its own full-batch loss."""
    assert row_reduction(on_rows(np.median), 6, 1) == MEAN


def test_a_non_finite_loss_is_left_to_the_reference():
    assert row_reduction(lambda start, stop: float("nan"), 6, 4) == MEAN


def test_a_mean_whose_terms_cancel_is_a_mean():
    """The mean of terms that cancel (a mean residual at a least-squares fit) is rounding noise
    around 0 — here −9.25e-18 in full and exactly 0 from the two shards. 1e-9 of that noise
    told nothing apart (the backend was skipped as "neither a mean nor a sum"); 1e-9 of the
    terms' own size does."""
    terms = np.array([0.1, 0.7, -0.3, 0.2, -0.4, -0.3])

    def loss_of(start, stop):
        return float(np.mean(terms[start:stop]))

    assert loss_of(0, 6) != 0.0 and loss_of(0, 3) / 2 + loss_of(3, 6) / 2 == 0.0
    assert row_reduction(loss_of, 6, 2) == MEAN
