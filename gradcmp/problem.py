"""A Problem is what every backend is asked: a model, a dataset and parameter values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .dtypes import DType
from .loading.dataset import Dataset
from .loading.pages import received
from .models import Model
from .params import Params


@dataclass(frozen=True)
class Problem:
    model: Model
    data: Dataset
    params: Params
    # How a GPU backend computes float32 matrix products: "default" (each framework's own
    # setting, TF32 where it allows it), "highest" (full float32) or "tf32" (TF32 allowed;
    # backends/devices.py).
    matmul_precision: str = "default"
    _inputs: dict = field(default_factory=dict, repr=False, compare=False)

    def inputs(self, dtype: DType) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) rounded to ``dtype`` — the same arrays for every backend and the reference.

        Backends must not write to them (frameworks wrap them without copying).
        """
        if dtype.name not in self._inputs:
            labels = self.model.integer_targets  # class labels, exactly, in every dtype
            with np.errstate(over="ignore"):  # overflow is reported by the reference
                # Contiguous, whatever the dataset's layout (a row-major .npy's columns are
                # strided views of the file): every backend sees the same memory order, so
                # the same summation order, as from a CSV. Made a part at a time, a
                # memory-mapped master's pages let go behind (pages.py); float64 needs no
                # copy of the dataset's own contiguous arrays.
                X = received(self.data.X, dtype.numpy_dtype)
                y = received(self.data.y, np.int64 if labels else dtype.numpy_dtype)
            # Read-only views: their flags (or a caller's) stay as they were.
            X, y = X.view(), y.view()
            X.flags.writeable = y.flags.writeable = False
            self._inputs[dtype.name] = (X, y)
        return self._inputs[dtype.name]
