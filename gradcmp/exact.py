"""Exact rational arithmetic on whole columns, fast enough for large datasets.

A column of rationals is stored as integer numerators over one common denominator, so a
model's reference can run with Python integers (exact, arbitrary size) and build a
``Fraction`` only for the final sums. Floats are dyadic rationals, so a float column's common
denominator is a power of two; a decimal column's is a power of ten (times whatever the data
needs).

The numerators are a numpy array of Python ints (dtype object): numpy's loops then do the
per-row arithmetic in C, calling the integers' own exact operations, several times faster
than the same arithmetic written as Python loops (1 M rows: ≈0.1 s per pass).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# Mantissa bits of a float64, with the hidden one.
FLOAT64_BITS = 53


@dataclass(frozen=True)
class ExactColumn:
    """Exact values ``numerators[i] / denominator``; ``numerators`` is an object array of
    Python ints."""

    numerators: np.ndarray
    denominator: int

    @classmethod
    def from_floats(cls, values: np.ndarray) -> ExactColumn:
        """The exact values of a float array (any binary float dtype), without a Python loop.

        Each float is m·2**e with an integer m of at most 53 bits (``frexp`` and a scaling by
        2**53 are exact); trailing zero bits of m move into e, and every m is shifted up to
        the smallest e, which gives the common denominator.
        """
        v = np.asarray(values, dtype=np.float64).ravel()
        fraction, exponent = np.frexp(v)
        m = np.ldexp(fraction, FLOAT64_BITS).astype(np.int64)
        e = exponent.astype(np.int64) - FLOAT64_BITS
        nonzero = m != 0
        if not nonzero.any():
            return cls(np.zeros(len(v), dtype=np.int64).astype(object), 1)
        lowest_bit = m & -m  # a power of two; its exponent is m's count of trailing zeros
        trailing = np.where(nonzero, np.frexp(lowest_bit.astype(np.float64))[1] - 1, 0)
        m, e = m >> trailing, e + trailing
        lowest = int(e[nonzero].min())
        base = min(lowest, 0)  # the denominator is 2**-base
        shift = np.where(nonzero, e - base, 0)
        if int(shift.max()) + FLOAT64_BITS <= 62:  # fits int64: shift there, convert once
            numerators = (m << shift).astype(object)
        else:
            numerators = np.left_shift(m.astype(object), shift.astype(object))
        return cls(numerators, 2**-base)

    @classmethod
    def from_fractions(cls, values: Sequence[Fraction]) -> ExactColumn:
        denominator = math.lcm(*(v.denominator for v in values)) if values else 1
        numerators = [v.numerator * (denominator // v.denominator) for v in values]
        return cls(_objects(numerators), denominator)

    def with_cells(self, exact: Mapping[int, Fraction]) -> ExactColumn:
        """This column with the values at some rows replaced by exact rationals (the decimals
        a float cannot hold): one common denominator again, a Python step per replaced row."""
        if not exact:
            return self
        denominator = math.lcm(self.denominator, *(f.denominator for f in exact.values()))
        numerators = self.numerators * (denominator // self.denominator)
        for row, value in exact.items():
            numerators[row] = value.numerator * (denominator // value.denominator)
        return ExactColumn(numerators, denominator)

    def with_decimals(
        self, rows: np.ndarray, significands: np.ndarray, exponents: np.ndarray
    ) -> ExactColumn:
        """This column with the values at ``rows`` replaced by significand · 10**exponent
        (the C reader's decimals), vectorised: one common denominator 2**a · 10**k."""
        if not len(rows):
            return self
        k = max(0, -int(exponents.min()))
        denominator = math.lcm(self.denominator, 10**k)
        numerators = self.numerators * (denominator // self.denominator)
        # significand · 10**e = significand · 10**(e + k) / 10**k, and 10**k divides the
        # denominator: each numerator is significand · 10**(e + k) · (denominator / 10**k).
        powers = _objects([10 ** int(e) for e in range(int(exponents.max()) + k + 1)])
        scale = denominator // 10**k
        numerators[rows] = (
            significands.astype(object) * powers[exponents.astype(np.int64) + k] * scale
        )
        return ExactColumn(numerators, denominator)

    def __len__(self) -> int:
        return len(self.numerators)

    def fractions(self) -> list[Fraction]:
        return [Fraction(int(n), self.denominator) for n in self.numerators]


def _objects(integers: Sequence[int]) -> np.ndarray:
    array = np.empty(len(integers), dtype=object)
    array[:] = integers
    return array


@dataclass(frozen=True)
class ExactData:
    """A dataset's features (one column each) and target, exactly."""

    columns: tuple[ExactColumn, ...]
    target: ExactColumn
    # What a model computed from these data and wants again (linear: the residuals).
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return len(self.target)
