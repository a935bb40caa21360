"""How rows are shared out among ranks, and how a rank's loss is weighted so that the ranks'
reduction gives the full-batch loss.

Rows are split the way users split them: contiguous blocks, the first ``n mod N`` ranks one row
longer (``numpy.array_split``, ``torch.tensor_split``); a rank may hold no rows (n < N).

A rank's loss L_r on its rows is weighted by w_r so that Σ_r w_r·L_r is the full loss L:
w_r = n_r/n for a loss that is a mean over rows (plus terms that do not depend on the rows),
w_r = 1 for a sum. Which one holds is checked, not assumed (``row_reduction``): a loss that is
neither (a batch statistic, a median) cannot be sharded without changing it, and its
distributed backends are skipped, saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

MEAN, SUM = "mean", "sum"


@dataclass(frozen=True)
class Shards:
    rows: int  # n, all ranks together
    bounds: tuple[tuple[int, int], ...]  # rank → [start, stop)

    @classmethod
    def split(cls, rows: int, world_size: int) -> Shards:
        base, extra = divmod(rows, world_size)
        bounds, start = [], 0
        for rank in range(world_size):
            stop = start + base + (1 if rank < extra else 0)
            bounds.append((start, stop))
            start = stop
        return cls(rows, tuple(bounds))

    @property
    def sizes(self) -> list[int]:
        return [stop - start for start, stop in self.bounds]

    @property
    def even(self) -> bool:
        return len(set(self.sizes)) == 1

    @property
    def longest(self) -> int:
        return max(self.sizes)

    def weight(self, rank: int, reduction: str) -> Fraction:
        """w_r: the rank's share of the full loss."""
        return self.weight_of(self.sizes[rank], reduction)

    def weight_of(self, size: int, reduction: str) -> Fraction:
        if reduction == SUM:
            return Fraction(1)
        return Fraction(size, self.rows)

    def padded_index(self) -> tuple[np.ndarray, np.ndarray]:
        """For a framework that shards evenly only (JAX): every rank's block padded to the
        longest one. (index into the rows, whether the row is real) — a padding row repeats
        row 0 (any finite row does) and carries weight 0; no row is dropped."""
        index, real = [], []
        for start, stop in self.bounds:
            block = list(range(start, stop))
            index.extend(block + [0] * (self.longest - len(block)))
            real.extend([True] * len(block) + [False] * (self.longest - len(block)))
        return np.asarray(index, dtype=np.int64), np.asarray(real)

    def describe(self) -> str:
        """``6 rows over 4 ranks: 2, 2, 1, 1``."""
        sizes = ", ".join(map(str, self.sizes))
        return f"{self.rows} rows over {len(self.bounds)} ranks: {sizes}"


def row_reduction(loss_of, rows: int, world_size: int) -> str | None:
    """MEAN or SUM — the first way the shards add up to the full loss — or None."""
    passing = passing_reductions(loss_of, rows, world_size)
    return passing[0] if passing else None


def passing_reductions(loss_of, rows: int, world_size: int) -> list[str]:
    """Which of MEAN and SUM make the shards add up to the full loss, value *and* gradient.

    ``loss_of(start, stop)`` is the loss on rows [start, stop) in float64 — a number, or the
    vector (loss, gradient elements …). The gradient matters: at a point where every shard's
    loss is 0 (a batch statistic times a zero, a sum at θ = 0) the values split both ways while
    the gradient splits one way or none. Checked at the parameters being compared to 1e-9 of
    the terms' magnitude, element by element (far above float64's rounding of a mean, far below
    what a wrong reduction changes). The magnitude is that of the full value or of the weighted
    shards', whichever is larger: where per-row terms cancel (a mean residual at a
    least-squares fit) the full value is rounding noise around 0, and so is the shards' sum."""
    full = np.atleast_1d(np.asarray(loss_of(0, rows), dtype=np.float64))
    if not np.isfinite(full).all():
        return [MEAN]  # nothing to tell apart; the reference reports the non-finite loss
    shards = Shards.split(rows, world_size)
    parts = [
        (stop - start, np.atleast_1d(np.asarray(loss_of(start, stop), dtype=np.float64)))
        for start, stop in shards.bounds
        if stop > start
    ]
    passing = []
    for reduction in (MEAN, SUM):
        terms = [float(shards.weight_of(size, reduction)) * part for size, part in parts]
        total = np.sum(terms, axis=0)
        scale = np.maximum(np.abs(full), np.sum(np.abs(terms), axis=0))
        scale = np.maximum(scale, np.finfo(np.float64).tiny)
        if np.all(np.abs(total - full) <= 1e-9 * scale):
            passing.append(reduction)
    return passing
