"""Shared fixtures: the seed problem, and a backend × dtype grid (one test id per pair)."""

from __future__ import annotations

import os
import signal

import pytest
from hypothesis import settings

from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.dtypes import DTYPES
from gradcmp.loading import data
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem

# A shell starts a background job (``make test &``) with SIGINT ignored, and every process the
# tests start would inherit that: the tests of Ctrl-C (gradcmp exits 130, ends its workers and
# ranks) would then test the harness. Restore Python's own handler (exec resets it to default).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


# Distributed backends start rank processes (``python -m gradcmp.distributed.rank``, or forked
# from ``python -m gradcmp.distributed.zygote``, whose command line they keep); none may
# outlive the run that started it. Every process this session starts after the fixture below
# carries RANK_MARKER in its environment (a rank inherits gradcmp's), so a leak is told apart
# from the ranks of other pytest sessions on the same machine.
RANK_MODULES = ("gradcmp.distributed.rank", "gradcmp.distributed.zygote")
RANK_MARKER = "GRADCMP_TEST_SESSION"


def rank_processes(token: str | None = None) -> list[int]:
    """The pids of live rank processes this session started (``token``: its marker)."""
    token = token or os.environ.get(RANK_MARKER, "")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")  # a zombie's is empty: it is gone
            if not any(module.encode() in argv for module in RANK_MODULES):
                continue
            with open(f"/proc/{entry}/environ", "rb") as f:
                environment = f.read().split(b"\0")
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if f"{RANK_MARKER}={token}".encode() in environment:
            found.append(int(entry))
    return found


@pytest.fixture(scope="session")
def no_rank_process_survives():
    """Marks this session's processes, and at its end checks that no rank is left (waiting a
    few seconds for ranks that a signal is still ending); a survivor fails the session's
    last test, and is killed so that it does not outlive the failure."""
    import signal
    import time

    token = f"{os.getpid()}-{time.time_ns()}"
    previous = os.environ.get(RANK_MARKER)
    os.environ[RANK_MARKER] = token
    yield
    deadline = time.monotonic() + 5
    while (left := rank_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if previous is None:
        os.environ.pop(RANK_MARKER, None)
    else:
        os.environ[RANK_MARKER] = previous
    assert not left, f"rank processes outlived the tests: {left}"
