"""A fault in a backend's call, or a signal to gradcmp while workers run, ends cleanly: the
call fails with its own reason and the rest of the run goes on (a ``print`` in a loss file never
corrupts ``--format json``, a call past ``--timeout`` is failed however late it is judged, a
setup error without a message or a ``sys.exit`` in a loss file fails that call, an odd
``--timeout`` is refused or means no limit); Ctrl-C while a worker is forked is exit 130, and
SIGTERM to gradcmp leaves no worker running. Never an internal error, a dropped interrupt or an
orphaned process.

CLI tests run gradcmp as a subprocess with ``GRADCMP_CACHE_DIR=""``: this process has torch
and jax imported, and gradcmp forks workers only from a process that has not.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from gradcmp.judging import workers

ENV = {**os.environ, "GRADCMP_CACHE_DIR": ""}


def gradcmp(*args: str, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", *args],
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=120,
        **kwargs,
    )


def results_of(done: subprocess.CompletedProcess) -> dict:
    return {(r["backend"], r["dtype"]): r for r in json.loads(done.stdout)["results"]}


LOSS = """
import time

import numpy as np

PARAMS = {{"theta0": 0.0, "theta1": 0.0}}


def loss(params, X, y, xp):
    {in_loss}
    r = params["theta0"] + X[:, 0] * params["theta1"] - y
    return xp.mean(r * r) / 2


def loss_torch(params, X, y):
    {in_loss_torch}
    r = params["theta0"] + X[:, 0] * params["theta1"] - y
    return (r * r).mean() / 2
"""


def loss_file(tmp_path, in_loss="pass", in_loss_torch="pass"):
    path = tmp_path / "loss_under_review.py"
    path.write_text(LOSS.format(in_loss=in_loss, in_loss_torch=in_loss_torch))
    return str(path)


def fake_torch(tmp_path, body: str) -> dict:
    """An environment whose ``torch`` is a package that fails to import with ``body``."""
    package = tmp_path / "fake" / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body + "\n")
    return {**ENV, "PYTHONPATH": str(tmp_path / "fake")}


def test_json_on_stdout_stays_valid_when_a_loss_file_prints(tmp_path):
    """A worker shares gradcmp's stdout, so a ``print`` in ``loss_torch`` (debug output, a
    library's banner) lands in front of the report and ``--format json`` is no longer JSON:
    every CI consumer of the report breaks. (``--no-workers`` has the same problem.) A
    backend's stdout belongs on stderr, never in the machine-readable report."""
    path = loss_file(tmp_path, in_loss_torch='print("debug: in loss_torch")')
    done = gradcmp("run", "--loss", path, "-b", "torch-grad", "--format", "json")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)  # today: JSONDecodeError, the output starts with "debug: ..."


def test_timeout_holds_for_a_call_that_ends_while_the_reference_is_computed(tmp_path):
    """``--timeout 0.5``, and loss_torch takes 1.5 s: past the timeout, so ``failed``
    (exit 3), as ``--no-workers`` reports it. With workers the call is judged only once
    the main process has finished the reference (slow here: 10 s); by then the worker has
    sent "begin" and "done" both, ``_serve`` reads "done" before it looks at the deadline,
    and the over-time call is accepted as ``ok`` (exit 0). It happens with real models too:
    an MLP 10-300-300-1 whose reference takes 7.7 s gave jax-grad float64 ``ok`` at 3.06 s
    under ``--timeout 2``."""
    path = loss_file(
        tmp_path,
        in_loss="if xp is not np:\n        time.sleep(10)  # the reference only",
        in_loss_torch="time.sleep(1.5)",
    )
    done = gradcmp(
        "run", "--loss", path, "-b", "torch-grad", "--dtype", "float64",
        "--timeout", "0.5", "--format", "json",
    )  # fmt: skip
    result = results_of(done)[("torch-grad", "float64")]
    assert result["seconds"] is None or result["seconds"] > 1.4  # it did take 1.5 s
    assert result["status"] == "failed", result  # today: ok
    assert done.returncode == 3


def test_a_setup_error_without_a_message_is_reported_not_a_dead_worker(tmp_path):
    """A framework whose import raises an exception with an empty message (``raise
    RuntimeError()``): ``_work`` formats it with ``str(exc).strip().splitlines()[0]``,
    which raises IndexError inside the except clause. The worker dies with a traceback on
    stderr and every call fails as "the worker process died in setup (exit code 1)",
    hiding the real reason; ``--no-workers`` says "import: RuntimeError"."""
    env = fake_torch(tmp_path, "raise RuntimeError()")
    done = gradcmp("run", "-b", "native,torch-grad", "--format", "json", env=env)
    assert done.returncode == 3, done.stderr
    note = results_of(done)[("torch-grad", "float64")]["note"]
    assert "Traceback" not in done.stderr, done.stderr
    assert note.startswith("import: RuntimeError"), note


def test_sys_exit_in_a_loss_file_fails_that_call_in_process_too(tmp_path):
    """``sys.exit(0)`` in loss_torch (float64 only): in a worker it fails that call (exit 3,
    "the worker process died (exit code 0)"), but in process (``--no-workers``, and every
    framework imported before the run) ``_execute`` catches only Exception, the SystemExit
    ends gradcmp itself, and the run exits 0 with an empty stdout — a CI gate passes
    with no report at all. A backend's SystemExit is that backend's failure."""
    path = loss_file(
        tmp_path, in_loss_torch="if X.dtype.itemsize == 8:\n        raise SystemExit(0)"
    )
    done = gradcmp("run", "--loss", path, "-b", "torch-grad", "--format", "json", "--no-workers")
    assert done.returncode == 3, (done.returncode, done.stdout[-300:], done.stderr)
    results = results_of(done)
    assert results[("torch-grad", "float32")]["status"] == "ok"
    assert results[("torch-grad", "float64")]["status"] == "failed"


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_timeout_of_inf_or_nan_is_refused_or_means_none(value):
    """``--timeout`` is a FloatRange(min=0, min_open=True), which lets ``inf`` and ``nan``
    through. ``inf``: the worker loop calls ``connection.wait(timeout=inf)`` → OverflowError,
    exit 70 "internal error … a bug in gradcmp". ``nan``: every in-process backend fails with
    "ValueError: Invalid value NaN" (exit 3) while the worker loop spins on a 0 s wait.
    Either refuse them (exit 2) or treat them as no limit (exit 0)."""
    done = gradcmp("run", "-b", "native,torch-grad", "--timeout", value, "--format", "plain")
    assert "internal error" not in done.stderr, done.stderr
    assert done.returncode in (0, 2), done.stdout[-600:] + done.stderr


def test_ctrl_c_while_a_worker_is_being_started_is_an_interrupt(monkeypatch):
    """Ctrl-C that arrives while ``Process.start()`` forks (the Process exists, its
    ``_popen`` is not set yet) reaches ``run_in_workers``' ``finally``: ``_Worker.stop``
    calls ``process.join()`` on a process that never started, and join's AssertionError
    ("can only join a started process") replaces the KeyboardInterrupt, so the CLI exits
    70, "internal error … a bug in gradcmp", instead of 130. Seen with a real SIGINT to the
    process group at 0.19 s into ``gradcmp run -b all``; simulated here by a fork that is
    interrupted."""
    import multiprocessing.context

    def interrupted(process_obj):
        raise KeyboardInterrupt

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "_Popen", staticmethod(interrupted))
    with pytest.raises(KeyboardInterrupt):
        workers.run_in_workers(
            {"torch": [("torch-grad", "float64")]},
            setup=lambda name: None,
            execute=lambda name, dtype: None,
            timeout=None,
            failed=lambda note: note,
        )


SIGINT_DURING_FORK = """
import os, signal, sys

sent = []


def interrupt_once():  # Ctrl-C arriving while the worker is forked
    if not sent:
        sent.append(True)
        os.kill(os.getpid(), signal.SIGINT)
        (lambda: None)()  # the next Python call: where the interpreter raises it


os.register_at_fork(after_in_parent=interrupt_once)
from gradcmp.cli import main

sys.argv = ["gradcmp", "run", "-b", "native,torch-grad", "--format", "json"]
main()
"""


def test_ctrl_c_during_the_fork_of_a_worker_is_not_swallowed():
    """A SIGINT delivered while a worker is forked raises KeyboardInterrupt inside an
    at-fork hook (logging registers one: ``_releaseLock``), where Python prints "Exception
    ignored in …" and drops it: the run goes on and exits 0 with a full report, as if
    Ctrl-C had never been pressed (and logging's module lock may stay held). Seen with real
    SIGINTs to the process group (2 of 40 runs at 0.19–0.2 s); made deterministic here by
    a hook that delivers the signal at that moment. Blocking SIGINT around the fork (and
    unblocking after) would deliver it where gradcmp handles it: exit 130."""
    done = subprocess.run(
        [sys.executable, "-c", SIGINT_DURING_FORK],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert done.returncode == 130, (done.returncode, done.stderr[-800:])
    assert done.stderr.strip() == "gradcmp: error: interrupted"


def test_sigterm_to_gradcmp_leaves_no_worker_running(tmp_path):
    """``timeout 60 gradcmp run``, a CI job's cancel, ``kill PID``: SIGTERM ends the main
    process at once (no handler, no ``finally``), and its workers live on as orphans,
    running every remaining call — a hung backend forever — and keeping the caller's
    stdout pipe open, so a CI step that reads it waits for them. The workers should end
    with the process that started them (a SIGTERM handler, or PR_SET_PDEATHSIG)."""
    marker = tmp_path / "started"
    path = loss_file(
        tmp_path, in_loss_torch=f"open({str(marker)!r}, 'w').close()\n    time.sleep(600)"
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gradcmp", "run", "--loss", path, "-b", "torch-grad"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
        start_new_session=True,
    )
    group = process.pid

    def group_alive() -> bool:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True

    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the worker never started its call"
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        deadline = time.monotonic() + 5
        while group_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not group_alive(), "a worker outlived gradcmp (still sleeping in loss_torch)"
    finally:
        if group_alive():
            os.killpg(group, signal.SIGKILL)
        process.wait(timeout=30)
