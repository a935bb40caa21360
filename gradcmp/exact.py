"""Exact rational arithmetic on whole columns, fast enough for large datasets.

A column of rationals is stored as integer numerators over one common denominator, so a
model's reference can run with Python integers (exact, arbitrary size) and build a
``Fraction`` only for the final sums. Floats are dyadic rationals, so a float column's common
denominator is a power of two; a decimal column's is a power of ten (times whatever the data
needs).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class ExactColumn:
    """Exact values ``numerators[i] / denominator``."""

    numerators: list[int]
    denominator: int

    @classmethod
    def from_floats(cls, values: np.ndarray) -> ExactColumn:
        """The exact values of a float array (any binary float dtype)."""
        ratios = [v.as_integer_ratio() for v in np.asarray(values, dtype=np.float64).tolist()]
        denominator = max((d for _, d in ratios), default=1)  # all powers of two
        return cls([n * (denominator // d) for n, d in ratios], denominator)

    @classmethod
    def from_fractions(cls, values: Sequence[Fraction]) -> ExactColumn:
        denominator = math.lcm(*(v.denominator for v in values)) if values else 1
        return cls([v.numerator * (denominator // v.denominator) for v in values], denominator)

    def __len__(self) -> int:
        return len(self.numerators)

    def fractions(self) -> list[Fraction]:
        return [Fraction(n, self.denominator) for n in self.numerators]


@dataclass(frozen=True)
class ExactData:
    """A dataset's features (one column each) and target, exactly."""

    columns: tuple[ExactColumn, ...]
    target: ExactColumn

    @property
    def rows(self) -> int:
        return len(self.target)
