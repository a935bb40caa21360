"""Shared fixtures: the seed problem, and a backend × dtype grid (one test id per pair)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from gradcmp import data
from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.dtypes import DTYPES
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem

# CI installs every framework; there a missing one must fail the run, not skip quietly.
REQUIRE_ALL_BACKENDS = os.environ.get("CI", "").lower() in ("1", "true")


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
    values = chosen.initial_params(dataset.features)
    if params:
        values.update({k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
    return Problem(chosen, dataset, Params.from_arrays(values))


@pytest.fixture
def seed_problem() -> Problem:
    dataset = data.load(None)
    model = get_model("linear")
    return Problem(model, dataset, Params.from_arrays(model.initial_params(dataset.features)))


@pytest.fixture(params=list(BACKENDS))
def backend(request):
    name = request.param
    missing = missing_modules(BACKENDS[name])
    if missing:
        message = f"{name}: {', '.join(missing)} not installed"
        if REQUIRE_ALL_BACKENDS:
            pytest.fail(message)
        pytest.skip(message)
    return name


@pytest.fixture(params=list(DTYPES))
def dtype(request):
    return DTYPES[request.param]
