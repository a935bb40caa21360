"""The Dataset every backend starts from, and what it keeps beside its values: the exact
decimals of cells float64 rounds. Its own module so that every reader (CSV, arrays, Parquet
partitions) imports it without importing the others."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import InputError
from ..reference.exact import ChunkedExactData, ExactSource
from .pages import parts

# The C reader stores a decimal's power of ten q as q + EXPONENT_BIAS (int8); 0: none there.
EXPONENT_BIAS = 64


@dataclass(frozen=True)
class Decimals:
    """Cells float64 cannot hold, as written, beside the values (the C reader's form, millions
    of them in a large file): column c's row r holds exactly
    ``significands[c, r] · 10**(exponents[c, r] − EXPONENT_BIAS)`` where ``exponents[c, r]``
    is not 0 (columns in the file's order)."""

    header: tuple[str, ...]
    significands: np.ndarray  # int64, columns × rows
    exponents: np.ndarray  # int8, biased; 0 where the float64 value is exact
    count: int

    def __len__(self) -> int:
        return self.count

    def for_column(
        self, name: str, start: int = 0, stop: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows counted from ``start``, significands, exponents) of column ``name``'s
        decimals in rows [start, stop)."""
        c = self.header.index(name)
        exponents = self.exponents[c, start:stop]
        rows = np.flatnonzero(exponents)
        return (
            rows,
            self.significands[c, start:stop][rows],
            exponents[rows].astype(np.int16) - EXPONENT_BIAS,
        )

    def cells(self) -> dict[tuple[int, str], Fraction]:
        """The same as ``Dataset.decimal_cells`` (a Fraction per cell: for small data)."""
        return {
            (int(r), name): Fraction(int(s)) * Fraction(10) ** int(e)
            for name in self.header
            for r, s, e in zip(*self.for_column(name))
        }


@dataclass(frozen=True)
class Dataset:
    """A matrix of features ``X`` (n × d) and a target ``y`` (n), float64."""

    path: str
    feature_names: tuple[str, ...]
    target: str
    X: np.ndarray
    y: np.ndarray
    # Exact values of the cells float64 rounds, keyed by (row, column name) ...
    decimal_cells: dict[tuple[int, str], Fraction] = field(default_factory=dict)
    # ... and, from the C reader, most of them in arrays (None: none there).
    decimals: Decimals | None = None

    @property
    def written_in_float64(self) -> bool:
        """Whether every value is exactly as written (no decimal cell float64 rounds)."""
        return not self.decimal_cells and self.decimals is None

    def all_decimal_cells(self) -> dict[tuple[int, str], Fraction]:
        """Every cell float64 rounds, exactly (a Fraction per cell: for small data)."""
        cells = dict(self.decimal_cells)
        if self.decimals is not None:
            cells.update(self.decimals.cells())
        return cells

    # What is worked out once from the values (their digest).
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """Digest of the column names and float64 values as written (identifies the data in
        baselines, whatever dtype a run computes in): the bytes of ``X.tobytes()`` and
        ``y.tobytes()``, read a part at a time (a memory-mapped file's pages let go behind)."""
        if "sha256" not in self._cache:
            import hashlib

            digest = hashlib.sha256("\x00".join((*self.feature_names, self.target)).encode())
            for array in (self.X, self.y):
                for _, _, part in parts(array):
                    digest.update(np.ascontiguousarray(part).data)
            self._cache["sha256"] = digest.hexdigest()
        return self._cache["sha256"]

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    @property
    def features(self) -> int:
        return self.X.shape[1]

    def exact_data(self) -> ChunkedExactData:
        """The values as written in the file, exactly, as integer columns made a part at a
        time (for the exact reference): the floats with the decimal cells put back."""
        by_column: dict[str, dict[int, Fraction]] = {}
        for (row, name), value in self.decimal_cells.items():
            by_column.setdefault(name, {})[row] = value

        def source(name: str, values: np.ndarray) -> ExactSource:
            return ExactSource(values, self.decimals, name, by_column.get(name, {}))

        columns = [source(name, self.X[:, j]) for j, name in enumerate(self.feature_names)]
        return ChunkedExactData(columns, source(self.target, self.y))

    def exact_columns(self) -> tuple[list[list[Fraction]], list[Fraction]]:
        """The values as written in the file, exactly: (feature columns, target)."""
        cells = self.all_decimal_cells()
        columns = [
            [cells.get((i, name), Fraction(v)) for i, v in enumerate(self.X[:, j])]
            for j, name in enumerate(self.feature_names)
        ]
        target = [cells.get((i, self.target), Fraction(v)) for i, v in enumerate(self.y)]
        return columns, target


def check_names(names: list[str], where: str, error=InputError) -> None:
    """Column names: none empty, none twice."""
    seen: set[str] = set()
    for i, cell in enumerate(names):
        if not cell:
            raise error(f"column {i + 1} has no name", where=where, hint="name every column")
        if cell in seen:
            raise error(f"column name {cell!r} appears twice", where=where, hint="rename one")
        seen.add(cell)
