"""Shared fixtures: the seed problem, and a backend × dtype grid (one test id per pair)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from gradcmp import data
from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.dtypes import DTYPES
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem

# CI installs every framework; there a missing one must fail the run, not skip quietly.
REQUIRE_ALL_BACKENDS = os.environ.get("CI", "").lower() in ("1", "true")

# Hypothesis: "ci" is deterministic (derandomize: a fixed seed per test) and bounded, so a CI
# run is reproducible; "dev" explores new examples each run. CI=true selects "ci".
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50)
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if REQUIRE_ALL_BACKENDS else "dev"))


@pytest.fixture
def seed_problem() -> Problem:
    dataset = data.load(None)
    model = get_model("linear")
    return Problem(model, dataset, Params.from_arrays(model.initial_params(dataset)))


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


@pytest.fixture
def buggy_model(monkeypatch):
    """Registers model ``buggy``: the seed's model with the selftest's missing-½ bug planted
    in its loss (its hand-derived ``native`` gradient stays correct)."""
    import dataclasses

    from gradcmp.models import MODELS
    from gradcmp.selftest import PLANTED_BUGS

    (bug,) = [b for b in PLANTED_BUGS if b.name == "missing-half"]
    model = dataclasses.replace(MODELS["linear"], name="buggy", loss=bug.loss)
    monkeypatch.setitem(MODELS, "buggy", model)
    return "buggy"
