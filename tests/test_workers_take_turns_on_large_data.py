"""On a large dataset the framework workers take turns for their calls (their working memory
would add up); a worker killed during its turn (past ``--timeout``) hands the turn on, so the
other worker's calls still run. On small data the calls overlap as before.

The workers run fake calls that record when they ran, forked from a fresh Python process (this
one has torch and jax imported, and forking a process with JAX's threads is unsafe)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np

from gradcmp.judging import runner

SCRIPT = """
import json, time
from gradcmp.judging import workers

def execute(name, dtype):
    start = time.monotonic()
    time.sleep(60 if name == "hangs" else 0.4)
    return [start, time.monotonic()]

results = workers.run_in_workers(
    {{"torch": [tuple(c) for c in {torch}], "jax": [("c", "x"), ("d", "x")]}},
    setup=lambda name: None,
    execute=execute,
    timeout={timeout},
    failed=lambda note: note,
    take_turns={turns},
)
print(json.dumps({{name: outcome for (name, _), outcome in results.outcomes.items()}}))
"""


def run_fake_workers(turns: bool, torch_calls=(("a", "x"), ("b", "x")), timeout=None) -> dict:
    script = SCRIPT.format(torch=json.dumps(torch_calls), timeout=timeout, turns=turns)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def overlapping(intervals: list[list[float]]) -> bool:
    ordered = sorted(intervals)
    return any(later[0] < earlier[1] for earlier, later in zip(ordered, ordered[1:]))


def test_taking_turns_no_two_calls_run_at_once():
    outcomes = run_fake_workers(turns=True)
    assert sorted(outcomes) == ["a", "b", "c", "d"]
    assert not overlapping(list(outcomes.values())), outcomes


def test_without_turns_the_workers_calls_overlap(tmp_path):
    """Each worker's first call waits (up to 30 s) until the other worker has begun a call, so
    the two overlap however late one worker starts on a loaded machine; were the calls run one
    at a time, each would wait the full 30 s and end before the other begins."""
    script = SCRIPT.format(torch=json.dumps([["a", "x"], ["b", "x"]]), timeout=None, turns=False)
    assert 'time.sleep(60 if name == "hangs" else 0.4)' in script  # what the meeting replaces
    script = script.replace(
        'time.sleep(60 if name == "hangs" else 0.4)',
        f"meet(name, {str(tmp_path)!r})",
    ).replace("def execute", MEET + "\ndef execute")
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert overlapping(list(outcomes.values())), outcomes


MEET = """
import os

def meet(name, folder):
    open(os.path.join(folder, name), "w").close()
    others = ("c", "d") if name in ("a", "b") else ("a", "b")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(os.path.exists(os.path.join(folder, o)) for o in others):
            return
        time.sleep(0.01)
"""


def test_a_worker_killed_during_its_turn_hands_the_turn_on():
    outcomes = run_fake_workers(turns=True, torch_calls=[["hangs", "x"], ["b", "x"]], timeout=3)
    assert "time limit" in outcomes["hangs"]  # failed, killed at the timeout
    for name in ("b", "c", "d"):  # the rest ran: the killed worker's turn was handed on
        start, end = outcomes[name]
        assert end - start < 5, outcomes


def test_the_run_takes_turns_only_beyond_the_threshold(monkeypatch):
    """The runner's choice, from the inputs' bytes in the run's dtypes: here X and y in
    float64 (16,000 bytes) and float32 (8,000)."""
    from gradcmp.api import _run
    from gradcmp.judging import workers
    from gradcmp.models import MODELS

    seen = []

    def fake(groups, setup, execute, timeout, failed, while_waiting, take_turns=False):
        seen.append(take_turns)
        while_waiting()
        return workers.WorkerResults()

    monkeypatch.setattr(runner, "run_in_workers", fake)
    rng = np.random.default_rng(0)
    arrays = (rng.normal(size=(1000, 1)), rng.normal(size=1000))
    for threshold in (24_000, 23_999):
        monkeypatch.setattr(runner, "TAKE_TURNS_ABOVE", threshold)
        report = _run(None, arrays, "y", MODELS["linear"], "native", "float64,float32", (), False)
        assert report.verdict == "agree"
    assert seen == [False, True]


NOTHING_SENT_DURING_A_TURN = """
import contextlib, multiprocessing.connection, os, sys
from gradcmp.judging import workers

holding = [False]
original_turn, original_send = workers._turn, multiprocessing.connection.Connection.send


@contextlib.contextmanager
def watched_turn(turns):
    with original_turn(turns):
        holding[0] = True
        try:
            yield
        finally:
            holding[0] = False


def watched_send(self, message):
    if holding[0]:  # in a worker, holding the turn: the parent may not be reading
        os.write(2, f"sent during a turn: {message[0]}\\n".encode())
    return original_send(self, message)


workers._turn = watched_turn
multiprocessing.connection.Connection.send = watched_send
workers.run_in_workers(
    {"torch": [("a", "x"), ("b", "x")], "jax": [("c", "x")]},
    setup=lambda name: None,
    execute=lambda name, dtype: name,
    timeout=5,
    failed=lambda note: note,
    take_turns=True,
)
"""


def test_a_worker_sends_nothing_while_it_holds_the_turn():
    """The parent reads no pipe while it computes the reference; a worker blocked on a full
    pipe while holding the turn would stall the other worker until the reference is done
    (and its call's clock would run: a false timeout). So a call's start goes to the parent
    through shared memory, and every message is sent outside the turn."""
    done = subprocess.run(
        [sys.executable, "-c", NOTHING_SENT_DURING_A_TURN],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "sent during a turn" not in done.stderr, done.stderr


def test_a_call_waiting_for_its_turn_is_not_timed_out():
    """The time limit counts from the call's turn: a call that waits behind the other
    worker's longer call is not failed for the wait."""
    # Whichever goes first, the other waits: 2.5 + 2.0 s from its "begin", past the 4 s
    # limit; no call runs longer than 2.5 s (1.5 s to spare on a loaded machine).
    script = SCRIPT.format(torch=json.dumps([["slow", "x"]]), timeout=4.0, turns=True)
    script = script.replace('60 if name == "hangs" else 0.4', '2.5 if name == "slow" else 2.0')
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert all(isinstance(o, list) for o in outcomes.values()), outcomes  # none timed out


def test_where_no_lock_can_be_taken_the_calls_run_without_turns():
    """A file system without POSIX locks (simulated: a read-only descriptor, which lockf
    refuses): every call still runs, overlapping as on small data."""
    script = SCRIPT.format(torch=json.dumps([["a", "x"], ["b", "x"]]), timeout=None, turns=True)
    script = script.replace(
        "from gradcmp.judging import workers\n",
        "from gradcmp.judging import workers\n"
        "import contextlib, tempfile\n"
        "@contextlib.contextmanager\n"
        "def read_only(wanted):\n"
        "    with tempfile.NamedTemporaryFile() as f, open(f.name, 'rb') as r:\n"
        "        yield r\n"
        "workers._turns_file = read_only\n",
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    assert sorted(outcomes) == ["a", "b", "c", "d"]
    assert all(isinstance(o, list) for o in outcomes.values()), outcomes
