"""Helpers the tests share (conftest.py holds the fixtures)."""

from __future__ import annotations

import numpy as np

from gradcmp.loading import data
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem


def make_problem(X, y, params=None, model="linear") -> Problem:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    dataset = data.Dataset(
        path="<test>",
        feature_names=tuple(f"x{j}" for j in range(X.shape[1])),
        target="y",
        X=X,
        y=np.asarray(y, dtype=np.float64),
    )
    chosen = get_model(model)
    values = chosen.initial_params(dataset)
    if params:
        values.update({k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
    return Problem(chosen, dataset, Params.from_arrays(values))
