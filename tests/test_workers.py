"""Framework backends in worker processes (the CLI's default): the same results as in one
process, and a call that hangs or crashes its worker fails alone.

These run the CLI as a subprocess: the test process has imported torch and jax already, and
gradcmp forks a worker only from a process that has not (see workers.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

pytest.importorskip("torch")
pytest.importorskip("jax")


def gradcmp(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRADCMP_CACHE_DIR": ""}  # no compile cache written by the tests
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def results_of(done: subprocess.CompletedProcess) -> dict:
    report = json.loads(done.stdout)
    return {(r["backend"], r["dtype"]): r for r in report["results"]}, report


def test_workers_give_the_same_numbers_as_one_process():
    with_workers = gradcmp("run", "-b", "all", "--format", "json")
    in_process = gradcmp("run", "-b", "all", "--format", "json", "--no-workers")
    assert with_workers.returncode == in_process.returncode == 0, with_workers.stderr
    forked, report = results_of(with_workers)
    alone, alone_report = results_of(in_process)
    assert report["timings"]["workers"] == ["jax", "torch"]
    # The frameworks' state comes from the workers, where they ran.
    assert report["environment"]["jax_x64_default"] is False
    assert report["environment"]["torch_threads"] >= 1
    assert alone_report["timings"]["workers"] == []
    assert forked.keys() == alone.keys()
    for key, result in forked.items():
        other = alone[key]
        assert (result["status"], result["verdict"]) == (other["status"], other["verdict"]), key
        assert result["loss"] == other["loss"], key
        assert result["grads"] == other["grads"], key
    # Each call's time is measured where it ran, and every framework's import apart.
    timings = report["timings"]
    assert {"load", "reference", "total", "setup", "backends"} <= timings.keys()
    assert timings["setup"]["torch-grad"] > 0 and timings["setup"]["jax-grad"] > 0
    timed = {f"{b}/{d}" for (b, d), r in forked.items() if r["seconds"] is not None}
    assert set(timings["backends"]) == timed and len(timed) >= 14


LOSS_FILE = """
import os
import signal
import time

PARAMS = {{"theta0": 0.0, "theta1": 0.0}}


def loss(params, X, y, xp):
    r = params["theta0"] + X[:, 0] * params["theta1"] - y
    return xp.mean(r * r) / 2


def loss_torch(params, X, y):
    import torch

    if X.dtype == torch.float64:
        {action}
    r = params["theta0"] + X[:, 0] * params["theta1"] - y
    return (r * r).mean() / 2
"""


def test_a_worker_that_crashes_fails_that_call_and_the_rest_still_run(tmp_path):
    path = tmp_path / "crash.py"
    path.write_text(LOSS_FILE.format(action="os.kill(os.getpid(), signal.SIGSEGV)"))
    done = gradcmp(
        "run", "--loss", str(path), "-b", "torch-grad,torch-backward,jax-grad", "--format", "json"
    )
    assert done.returncode == 3, done.stderr
    results, _ = results_of(done)
    for backend in ("torch-grad", "torch-backward"):
        assert results[(backend, "float32")]["status"] == "ok"
        failed = results[(backend, "float64")]
        assert failed["status"] == "failed"
        assert failed["note"] == "the worker process died (signal 11)"
    assert results[("jax-grad", "float64")]["status"] == "ok"


def test_a_call_past_the_timeout_is_ended_and_the_next_one_runs(tmp_path):
    path = tmp_path / "slow.py"
    path.write_text(LOSS_FILE.format(action="time.sleep(600)"))
    start = time.monotonic()
    done = gradcmp(
        "run",
        "--loss",
        str(path),
        "-b",
        "torch-grad",
        "--dtype",
        "float64,float32",
        "--timeout",
        "5",
        "--format",
        "json",
    )
    elapsed = time.monotonic() - start
    assert done.returncode == 3, done.stderr
    results, _ = results_of(done)
    slow = results[("torch-grad", "float64")]
    assert slow["status"] == "failed"
    assert "timed out after 5 s" in slow["note"]
    assert results[("torch-grad", "float32")]["status"] == "ok"
    assert elapsed < 120  # the sleeping worker was killed, not waited for


def test_timings_are_shown_on_request():
    done = gradcmp("run", "-b", "native,torch-grad", "--timings", "--format", "plain")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    summary = next(line for line in lines if line.startswith("timings: total "))
    assert "load" in summary and "reference" in summary
    assert any(line.startswith("  setup (imports): ") and "torch-grad" in line for line in lines)
    assert any(line.startswith("  torch-grad float32: ") for line in lines)
    assert "timings:" not in gradcmp("run", "-b", "native", "--format", "plain").stdout
