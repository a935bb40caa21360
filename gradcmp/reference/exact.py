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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..loading.pages import parts, release

# Mantissa bits of a float64, with the hidden one.
FLOAT64_BITS = 53


@dataclass(frozen=True)
class ExactColumn:
    """Exact values ``numerators[i] / denominator``; ``numerators`` is an object array of
    Python ints."""

    numerators: np.ndarray
    denominator: int

    @classmethod
    def from_floats(cls, values: np.ndarray, base: int | None = None) -> ExactColumn:
        """The exact values of a float array (any binary float dtype), without a Python loop.

        Each float is m·2**e with an integer m of at most 53 bits (``frexp`` and a scaling by
        2**53 are exact); trailing zero bits of m move into e, and every m is shifted up to
        the smallest e, which gives the common denominator 2**-base (``base``: given, for a
        part of a column that shares the whole column's denominator, or ``float_base``).
        """
        m, e, nonzero = _mantissas(values)
        if base is None:
            base = _base(e, nonzero)
        if not nonzero.any():
            return cls(np.zeros(len(m), dtype=np.int64).astype(object), 2**-base)
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

    def rescaled(self, denominator: int) -> ExactColumn:
        """The same values over ``denominator`` (a multiple of this one)."""
        if denominator == self.denominator:
            return self
        return ExactColumn(self.numerators * (denominator // self.denominator), denominator)

    def with_cells(
        self, exact: Mapping[int, Fraction], denominator: int | None = None
    ) -> ExactColumn:
        """This column with the values at some rows replaced by exact rationals (the decimals
        a float cannot hold): one common denominator again (or the given one, a multiple of
        all), a Python step per replaced row."""
        if not exact:
            return self if denominator is None else self.rescaled(denominator)
        if denominator is None:
            denominator = math.lcm(self.denominator, *(f.denominator for f in exact.values()))
        numerators = self.numerators * (denominator // self.denominator)
        for row, value in exact.items():
            numerators[row] = value.numerator * (denominator // value.denominator)
        return ExactColumn(numerators, denominator)

    def with_decimals(
        self,
        rows: np.ndarray,
        significands: np.ndarray,
        exponents: np.ndarray,
        denominator: int | None = None,
    ) -> ExactColumn:
        """This column with the values at ``rows`` replaced by significand · 10**exponent
        (the C reader's decimals), vectorised: one common denominator 2**a · 10**k (or the
        given ``denominator``, a multiple of both, for a part of a column)."""
        if not len(rows):
            return self if denominator is None else self.rescaled(denominator)
        k = max(0, -int(exponents.min()))
        if denominator is None:
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


def _mantissas(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, e, m ≠ 0) with values = m·2**e exactly, m odd (or 0), |m| < 2**53."""
    v = np.asarray(values, dtype=np.float64).ravel()
    fraction, exponent = np.frexp(v)
    m = np.ldexp(fraction, FLOAT64_BITS).astype(np.int64)
    e = exponent.astype(np.int64) - FLOAT64_BITS
    nonzero = m != 0
    lowest_bit = m & -m  # a power of two; its exponent is m's count of trailing zeros
    trailing = np.where(nonzero, np.frexp(lowest_bit.astype(np.float64))[1] - 1, 0)
    return m >> trailing, e + trailing, nonzero


def _base(e: np.ndarray, nonzero: np.ndarray) -> int:
    return min(int(e[nonzero].min()), 0) if nonzero.any() else 0


def float_base(values: np.ndarray) -> int:
    """The exponent of the common denominator 2**-base of a float column (≤ 0)."""
    values = np.asarray(values)
    if values.ndim != 1:
        values = values.ravel()
    bases = (_base(*_mantissas(part)[1:]) for _, _, part in parts(values, CHUNK_ROWS))
    return min(bases, default=0)


def _objects(integers: Sequence[int]) -> np.ndarray:
    array = np.empty(len(integers), dtype=object)
    array[:] = integers
    return array


@dataclass(frozen=True)
class ExactData:
    """A dataset's features (one column each) and target, exactly."""

    columns: tuple[ExactColumn, ...]
    target: ExactColumn
    # What a model computed from these data and wants again (linear: its sums).
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def rows(self) -> int:
        return len(self.target)

    @property
    def denominators(self) -> tuple[tuple[int, ...], int]:
        return tuple(c.denominator for c in self.columns), self.target.denominator

    def chunks(self) -> Iterator[ExactData]:
        yield self


# Rows per part of a ChunkedExactData: its integers and their temporaries take ≈ 300 bytes a
# row, so a part stays within a few MB whatever the dataset's size.
CHUNK_ROWS = 1 << 14


@dataclass(frozen=True)
class ExactSource:
    """One column's values for ChunkedExactData: floats, with some rows replaced by exact
    decimals (the C reader's, ``decimals.for_column(column, start, stop)`` → rows,
    significands, exponents) or Fractions (row → value)."""

    floats: np.ndarray
    decimals: object = None  # data.Decimals
    column: str = ""
    fractions: Mapping[int, Fraction] = field(default_factory=dict)

    def _decimals(self, start: int, stop: int):
        return self.decimals.for_column(self.column, start, stop)

    def denominator(self) -> int:
        denominator = 2 ** -float_base(self.floats)
        if self.decimals is not None:
            lowest = min(
                (
                    int(e.min())
                    for start in range(0, len(self.floats), CHUNK_ROWS)
                    if len(e := self._decimals(start, start + CHUNK_ROWS)[2])
                ),
                default=0,
            )
            denominator = math.lcm(denominator, 10 ** max(0, -lowest))
        if self.fractions:
            denominator = math.lcm(denominator, *(f.denominator for f in self.fractions.values()))
        return denominator

    def part(self, start: int, stop: int, denominator: int) -> ExactColumn:
        base = -(denominator & -denominator).bit_length() + 1  # 2**-base divides it
        floats = self.floats[start:stop]
        column = ExactColumn.from_floats(floats, base).rescaled(denominator)
        release(floats)  # a memory-mapped master's pages: read once per pass
        if self.decimals is not None:
            column = column.with_decimals(*self._decimals(start, stop), denominator)
        cells = {r - start: f for r, f in self.fractions.items() if start <= r < stop}
        return column.with_cells(cells, denominator)


class ChunkedExactData:
    """A dataset's exact values, made a part at a time (``chunks``) over denominators common
    to the whole columns: the model sums over the parts, and memory stays bounded."""

    def __init__(self, columns: Sequence[ExactSource], target: ExactSource) -> None:
        self.sources = (*columns, target)
        self._denominators = [s.denominator() for s in self.sources]
        self.cache: dict = {}

    @property
    def rows(self) -> int:
        return len(self.sources[-1].floats)

    @property
    def denominators(self) -> tuple[tuple[int, ...], int]:
        return tuple(self._denominators[:-1]), self._denominators[-1]

    def chunks(self) -> Iterator[ExactData]:
        for start in range(0, self.rows, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, self.rows)
            parts = [s.part(start, stop, d) for s, d in zip(self.sources, self._denominators)]
            yield ExactData(tuple(parts[:-1]), parts[-1])
