"""``native``: pure-Python loops over rows with the model's hand-derived gradient."""

from __future__ import annotations

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from .base import Output, SkipBackend

# Python floats are float64; numpy's float32 and float16 scalars keep every operation in their
# dtype (NEP 50: a Python int or float operand does not promote them); ml_dtypes' bfloat16
# computes in float32 and rounds back, which for +, −, ×, ÷ is the correctly rounded bfloat16
# result (24 ≥ 2·8 + 2 bits: double rounding is innocuous, Figueroa 1995).
SCALARS = {"float64": float, "float32": np.float32, "float16": np.float16, "bfloat16": None}


def _scalar(dtype: DType):
    if dtype.name == "bfloat16":
        return dtype.numpy_dtype.type
    return SCALARS[dtype.name]


class Rows:
    """The rows of an array as Python values (lists of floats, or numpy scalars), made
    ``PART`` rows at a time as they are iterated: a list of all of them would take ≈30 bytes
    per value (140 MB for a million rows of one feature and a target)."""

    PART = 1 << 14

    def __init__(self, array: np.ndarray, as_floats: bool) -> None:
        self.array, self.as_floats = array, as_floats

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self):
        for start in range(0, len(self.array), self.PART):
            part = self.array[start : start + self.PART]
            if self.as_floats:
                yield from part.tolist()
            elif part.ndim == 1:
                yield from part
            else:
                yield from (list(row) for row in part)


class Native:
    name = "native"
    description = "pure-Python loops, hand-derived gradient (float32 via numpy scalars)"
    requires: tuple[str, ...] = ()
    dtypes = tuple(SCALARS)

    def setup(self) -> None:
        pass

    def compute(self, problem: Problem, dtype: DType) -> Output:
        model = problem.model
        if model.native is None:
            raise SkipBackend(f"{model.name} has no hand-derived gradient (grad_native)")
        if dtype.name not in model.native_dtypes:
            raise SkipBackend(f"{model.name}'s hand-derived gradient computes in Python floats")
        if dtype.name not in self.dtypes:
            raise SkipBackend(f"native does not compute in {dtype.name}")
        scalar = _scalar(dtype)
        X, y = problem.inputs(dtype)
        if scalar is float:
            params = {k: v.ravel().tolist() for k, v in problem.params.as_dtype(dtype).items()}
        else:
            params = {k: list(v.ravel()) for k, v in problem.params.as_dtype(dtype).items()}
        if model.source == "built-in":  # they only iterate: Python values a part at a time
            rows, target = Rows(X, scalar is float), Rows(y, scalar is float)
        elif scalar is float:  # a loss file's grad_native was promised lists
            rows, target = X.tolist(), y.tolist()
        else:
            rows, target = [list(r) for r in X], list(y)
        # Overflow shows as inf in the result (and the verdict says so); no numpy warnings.
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            loss, grads = model.native(params, rows, target, scalar)
        shapes = {k: v.shape for k, v in problem.params.values.items()}
        grads = {k: np.reshape(np.array(g), shapes[k]) for k, g in grads.items()}
        return Output(loss, grads, side="grad_native")
