"""A Problem is what every backend is asked: a model, a dataset and parameter values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .data import Dataset
from .dtypes import DType
from .models import Model
from .params import Params


@dataclass(frozen=True)
class Problem:
    model: Model
    data: Dataset
    params: Params
    _inputs: dict = field(default_factory=dict, repr=False, compare=False)

    def inputs(self, dtype: DType) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) rounded to ``dtype`` — the same arrays for every backend and the reference.

        Backends must not write to them (frameworks wrap them without copying).
        """
        if dtype.name not in self._inputs:
            with np.errstate(over="ignore"):  # overflow is reported by the reference
                X, y = dtype.round(self.data.X), dtype.round(self.data.y)
            if self.model.integer_targets:  # class labels, exactly, in every dtype
                y = np.asarray(self.data.y).astype(np.int64)
            # Contiguous, whatever the dataset's layout (a row-major .npy's columns are
            # strided views of the file): every backend sees the same memory order, so the
            # same summation order, as from a CSV.
            X, y = np.ascontiguousarray(X), np.ascontiguousarray(y)
            # Read-only views: float64 needs no copy of the dataset's own arrays, and their
            # flags (or a caller's) stay as they were.
            X, y = X.view(), y.view()
            X.flags.writeable = y.flags.writeable = False
            self._inputs[dtype.name] = (X, y)
        return self._inputs[dtype.name]
