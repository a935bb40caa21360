"""One result's errors as columns: name → ``Error``, made on access.

A model with 10⁵ parameters has 10⁵ outputs per result; judging decides them at array speed
(agreement.measure_arrays), and making an ``Error`` tuple for each (a tenth of a second for
the 94k-parameter MLP of benchmarks/gradcheck_mlp.py) is more than the verdict costs. The
table keeps the numbers as float64 columns, the outputs the exact rule measured written into
them, and builds an ``Error`` only for the output asked for. The questions asked of every
output — which is worst, which are beyond the dtype's range — are answered on the columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from .agreement import Error

FIELDS = Error._fields[:-1]  # the numbers; the last field, out_of_range, is a flag


class ErrorTable(Mapping):
    """``names`` → Error, read-only (``copy()`` or ``dict()`` of it for a dict), from one
    float64 column per number of ``Error`` (``columns``, in ``FIELDS`` order) and ``exact``:
    the Errors the exact rule made, which replace their rows (their numbers are written into
    the columns, so the columns hold every output's)."""

    def __init__(self, names: list[str], columns: Sequence[np.ndarray], exact: dict[str, Error]):
        self.names = names
        self._index: dict[str, int] | None = None
        self.columns = {f: np.array(c, dtype=np.float64) for f, c in zip(FIELDS, columns)}
        self.out_of_range = np.zeros(len(names), dtype=bool)
        for name, error in exact.items():
            i = self.index[name]
            for f in FIELDS:
                self.columns[f][i] = getattr(error, f)
            self.out_of_range[i] = error.out_of_range

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {name: i for i, name in enumerate(self.names)}
        return self._index

    def __getitem__(self, name: str) -> Error:
        i = self.index[name]
        return Error(
            *(float(self.columns[f][i]) for f in FIELDS), out_of_range=bool(self.out_of_range[i])
        )

    def __contains__(self, name) -> bool:
        return name in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def copy(self) -> dict[str, Error]:
        """The errors as a plain dict (every Error made)."""
        return dict(self.items())

    def largest(
        self, outputs: Sequence[str] | None, field: str, nonfinite_first: bool
    ) -> str | None:
        """The first output of ``outputs`` (all, for None) with the largest ``field`` — after
        those whose ``abs`` is not finite, where ``nonfinite_first`` — as Python's ``max`` picks
        it; None where a NaN in ``field`` makes max's pick depend on the order (the caller
        then asks max itself)."""
        at = (
            np.arange(len(self.names))
            if outputs is None
            else np.fromiter((self.index[k] for k in outputs), dtype=np.intp, count=len(outputs))
        )
        if at.size == 0:
            return None
        values = self.columns[field][at]
        if np.isnan(values).any():
            return None
        candidates = np.ones(at.size, dtype=bool)
        if nonfinite_first:
            nonfinite = ~np.isfinite(self.columns["abs"][at])
            if nonfinite.any():
                candidates = nonfinite
        top = values[candidates].max()
        return self.names[at[np.flatnonzero(candidates & (values == top))[0]]]

    def beyond_range(self) -> list[str]:
        """The outputs whose exact value is beyond the dtype's range (``Error.out_of_range``)."""
        return [self.names[i] for i in np.flatnonzero(self.out_of_range)]

