"""A world of rank processes ends with gradcmp, whatever happens in it (gradcmp/distributed/
world.py): --timeout ends the whole world; a rank that crashes or raises fails its backend in
one line naming the rank; a rank that misbehaves after sending its results leaves a note, not
a failure; Ctrl-C and SIGTERM end gradcmp and every rank. No rank process ever survives.

The faults are planted in one loss file, one per world size, so that one run starts several
worlds (each costs seconds: N interpreters importing torch).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from conftest import rank_processes

import gradcmp
from gradcmp.distributed import world as world_module

pytestmark = pytest.mark.usefixtures("no_rank_process_survives")

SAFETY_TIMEOUT = 300.0  # a hang must fail the test, not CI's job

FAULTS = '''\
"""Linear regression whose distributed steps fail on purpose, one way per world size."""
import atexit
import os
import subprocess
import sys
import threading
import time

import numpy as np

PARAMS = {"theta0": 0.0, "theta1": [0.0]}
ORPHAN = "@ORPHAN@"  # the test finds the process this marker names


def _torch_rank():
    torch = sys.modules.get("torch")
    if torch is None or not torch.distributed.is_initialized():
        return None, None
    return torch.distributed.get_rank(), torch.distributed.get_world_size()


def loss(params, X, y, xp):
    if _torch_rank() == (2, 3):
        os._exit(3)  # torch-ddp:3: rank 2 dies without a word
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_native(params, X, y):
    X, y = np.asarray(X), np.asarray(y)
    r = params["theta0"] + X @ np.asarray(params["theta1"]) - y
    return {"theta0": float(np.mean(r)), "theta1": (X.T @ r / len(y)).tolist()}


def grad_torch_dist(params, X, y, ctx):
    import torch
    import torch.distributed as dist

    if (ctx.rank, ctx.world_size) == (1, 2):
        time.sleep(3600)  # torch-dist:2: rank 1 never answers; rank 0 waits in all_reduce
    if (ctx.rank, ctx.world_size) == (2, 3):
        raise ValueError("planted in rank 2")  # torch-dist:3
    r = params["theta0"] + X @ params["theta1"] - y
    grads = torch.autograd.grad((r * r).sum() / 2 / ctx.rows, list(params.values()))
    out = {}
    for name, g in zip(params, grads):
        g = g.clone()
        dist.all_reduce(g, group=ctx.group)
        out[name] = g
    return out


def grad_jax_dist(params, X, y, ctx):
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    if ctx.world_size == 1:
        os._exit(0)  # jax-dist:1: exits "successfully" without a result
    if ctx.world_size == 2:
        # jax-dist:2: leaves a child behind, and aborts at teardown after its result is sent
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", ORPHAN])
        atexit.register(os._exit, 1)
    if ctx.world_size == 3:
        # jax-dist:3: a thread that never ends keeps the process from exiting
        threading.Thread(target=time.sleep, args=(3600,), daemon=False).start()

    def local(p, X, y, w):
        p = jax.tree.map(lambda a: jax.lax.pcast(a, ctx.axis, to="varying"), p)

        def f(p):
            r = p["theta0"] + X @ p["theta1"] - y
            return jnp.sum(w * r * r) / 2 / ctx.rows

        return jax.tree.map(lambda a: jax.lax.psum(a, ctx.axis), jax.grad(f)(p))

    spec = (P(), P(ctx.axis), P(ctx.axis), P(ctx.axis))
    step = jax.shard_map(local, mesh=ctx.mesh, in_specs=spec, out_specs=P())
    return jax.jit(step)(params, X, y, ctx.weights)
'''


@pytest.fixture
def faults(tmp_path):
    """The loss file, and the marker in the command line of the child jax-dist:2 leaves."""
    orphan = f"gradcmp-test-orphan-{uuid.uuid4().hex}"
    path = tmp_path / "faults.py"
    path.write_text(FAULTS.replace("@ORPHAN@", orphan))
    return path, orphan


def line_of(path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def processes_named(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if marker.encode() in f.read().split(b"\0"):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def gone_within(seconds: float, alive) -> list[int]:
    """What ``alive()`` still lists after waiting up to ``seconds`` for it to empty."""
    deadline = time.monotonic() + seconds
    while (left := alive()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


# World.wait on stand-in ranks: tiny Python processes that do what a rank may do (send a
# result, die silently, print, hang), in sessions of their own as real ranks are. Fast, and
# the timing of each fault is in the test's hands.

PRELUDE = """\
import os, pickle, signal, subprocess, sys, time
directory, rank = sys.argv[1], int(sys.argv[2])

def send():
    path = os.path.join(directory, f"rank{rank}.pkl")
    with open(path + ".tmp", "wb") as f:
        pickle.dump({"rank": rank}, f)
    os.replace(path + ".tmp", path)

def flag(name):
    open(os.path.join(directory, name), "w").close()

def wait_for(name):
    while not os.path.exists(os.path.join(directory, name)):
        time.sleep(0.01)

"""


def stand_in_world(tmp_path, scripts: list[str], timeout: float | None = None):
    """A World whose ranks run ``scripts`` (after PRELUDE), one each."""
    directory = tmp_path / "world"
    directory.mkdir()
    world = object.__new__(world_module.World)
    world.timeout, world.directory, world.start = timeout, str(directory), time.monotonic()
    world.zygote = None  # its ranks are these processes, started here
    world.ranks = []
    for rank, script in enumerate(scripts):
        with open(world_module.log_file(world.directory, rank), "wb") as log:
            world.ranks.append(
                subprocess.Popen(
                    [sys.executable, "-c", PRELUDE + script, world.directory, str(rank)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return world


LOST_PEER = """
wait_for("rank2-dead")
time.sleep(0.2)
print("RuntimeError: [gloo/transport/tcp/pair.cc:534] Connection closed by peer", flush=True)
sys.exit(1)
"""


def test_the_rank_that_died_first_is_named_not_the_ones_that_lost_it(tmp_path):
    """Rank 2 dies without a word; ranks 0 and 1 then fail on the lost connection. Rank 2 is
    the cause (naming the lowest failed rank named rank 0's "connection closed")."""
    silent = 'flag("rank2-dead")\nos._exit(3)\n'
    outcome = stand_in_world(tmp_path, [LOST_PEER, LOST_PEER, silent]).wait()
    assert outcome.failure == "rank 2 failed: exit code 3"


def test_a_rank_error_line_is_the_reason(tmp_path):
    said = 'print("gradcmp-rank: loss.py:7: ValueError: no", file=sys.stderr)\nsys.exit(1)\n'
    outcome = stand_in_world(tmp_path, ["send()", said]).wait()
    assert outcome.failure == "rank 1 failed: loss.py:7: ValueError: no"


@pytest.mark.parametrize(
    "script, failure",
    [
        ("os._exit(0)", "rank 0 failed: exit code 0 without sending its results"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "rank 0 failed: killed by SIGKILL"),
        (
            'print("epoch 1 done")\nos._exit(3)',
            "rank 0 failed: exit code 3 (its last output: epoch 1 done)",
        ),
    ],
    ids=["exit-0", "signal", "printed"],
)
def test_a_rank_that_ends_without_a_result_fails_the_world(tmp_path, script, failure):
    outcome = stand_in_world(tmp_path, [script]).wait()
    assert outcome.failure == failure
    assert outcome.results == [None]


def test_a_rank_that_exits_non_zero_after_sending_is_a_note(tmp_path):
    outcome = stand_in_world(tmp_path, ["send()", "send()\nsys.exit(1)"]).wait()
    assert outcome.failure == ""
    assert outcome.results == [{"rank": 0}, {"rank": 1}]
    assert outcome.notes == ["rank 1 exited with code 1 after sending its results"]


def test_a_rank_that_never_exits_after_sending_is_ended_without_a_note(tmp_path, monkeypatch):
    monkeypatch.setattr(world_module, "TEARDOWN_SECONDS", 0.5)
    world = stand_in_world(tmp_path, ["send()", "send()\ntime.sleep(600)"])
    began = time.monotonic()
    outcome = world.wait()
    assert time.monotonic() - began < 10
    assert (outcome.failure, outcome.notes) == ("", [])
    assert outcome.results == [{"rank": 0}, {"rank": 1}]
    assert world.ranks[1].returncode == -signal.SIGKILL


def test_the_timeout_ends_every_rank(tmp_path):
    world = stand_in_world(tmp_path, ["send()", "time.sleep(600)"], timeout=0.5)
    outcome = world.wait()
    assert outcome.failure == (
        "timed out after 0.5 s, the time limit per call; the others still ran (all 2 ranks ended)"
    )
    assert [p.returncode for p in world.ranks] == [0, -signal.SIGKILL]


def test_what_a_rank_started_ends_with_its_world_even_after_the_rank_exited(tmp_path):
    marker = f"gradcmp-test-child-{uuid.uuid4().hex}"
    child = (
        f'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"])\n'
        "send()\n"
    )
    world = stand_in_world(tmp_path, [child])
    assert gone_within(10, lambda: [] if processes_named(marker) else [None]) == []
    outcome = world.wait()  # the rank exits at once; its child lives on in its session
    assert outcome.failure == "" and outcome.results == [{"rank": 0}]
    assert gone_within(5, lambda: processes_named(marker)) == []


def test_timeout_ends_the_whole_world_and_only_its_backend(faults):
    """Rank 1 sleeps forever and rank 0 waits for it in all_reduce: at --timeout both are
    ended, the backend fails with the timeout's words, the rest of the run stands."""
    path, _ = faults
    began = time.monotonic()
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=path,
        backends=["native", "torch-dist:2"],
        dtypes="float64",
        timeout=8,
    )
    elapsed = time.monotonic() - began
    results = {r.backend: r for r in report.results}
    world = results["torch-dist:2"]
    assert world.status == "failed"
    assert world.note == (
        "timed out after 8 s, the time limit per call; the others still ran (all 2 ranks ended)"
    )
    assert results["native"].status == "ok" and results["native"].verdict == "agree"
    assert report.exit_code == 3
    assert elapsed < 8 + 20  # ended at the timeout, not when torch's own 300 s ran out
    assert rank_processes() == []  # ended and reaped before compare returned


def test_ranks_that_crash_fail_their_backend_and_a_rank_that_misbehaves_after_sending_is_a_note(
    faults, monkeypatch
):
    path, orphan = faults
    monkeypatch.setattr(world_module, "TEARDOWN_SECONDS", 5.0)
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=path,
        backends=["torch-dist:3", "torch-ddp:3", "jax-dist:1", "jax-dist:2", "jax-dist:3"],
        dtypes="float64",
        timeout=SAFETY_TIMEOUT,
    )
    assert rank_processes() == []
    results = {r.backend: r for r in report.results}
    # A raise in the user's step: the rank, and the line in the user's file.
    raised = results["torch-dist:3"]
    assert raised.status == "failed"
    where = f"{path}:{line_of(path, 'planted in rank 2')}"
    assert raised.note == f"rank 2 failed: {where}: ValueError: planted in rank 2"
    # A rank that dies without a word (the others then lose their peer: rank 2 is named).
    assert results["torch-ddp:3"].status == "failed"
    assert results["torch-ddp:3"].note == "rank 2 failed: exit code 3"
    # Exit code 0 without a result is no success.
    assert results["jax-dist:1"].status == "failed"
    assert results["jax-dist:1"].note == ("rank 0 failed: exit code 0 without sending its results")
    # After sending: the result stands, with a note.
    aborted = results["jax-dist:2"]
    assert (aborted.status, aborted.verdict) == ("ok", "agree")
    assert aborted.note == "rank 0 exited with code 1 after sending its results"
    # A rank that never exits after sending (a thread of the loss's): ended, its result kept.
    hung = results["jax-dist:3"]
    assert (hung.status, hung.verdict, hung.note) == ("ok", "agree", "")
    # Whatever a rank started dies with its world, even where the rank itself had exited.
    assert gone_within(5, lambda: processes_named(orphan)) == []


def spawn_gradcmp(tmp_path, *args: str) -> subprocess.Popen:
    """gradcmp in ``tmp_path``, its temporary directories there too (``tmp_path/tmp``)."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "gradcmp", "run", *args],
        cwd=tmp_path,
        # (keeps the session's marker)
        env={**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path / "tmp")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_ranks(process: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 60
    while len(rank_processes()) < count:
        if process.poll() is not None:
            pytest.fail(f"gradcmp ended before its ranks were seen: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no ranks within 60 s")
        time.sleep(0.02)


@pytest.mark.parametrize("sent, code", [(signal.SIGINT, 130), (signal.SIGTERM, -signal.SIGTERM)])
def test_a_signal_to_gradcmp_ends_every_rank(tmp_path, sent, code):
    """Ctrl-C (SIGINT, to gradcmp alone: the ranks are in sessions of their own) and a CI
    job's cancel (SIGTERM) while four ranks import torch: gradcmp ends — 130 for Ctrl-C, by
    SIGTERM for SIGTERM, after ending its world — and so, within seconds, does every rank;
    the world's directory is gone."""
    assert rank_processes() == []
    process = spawn_gradcmp(tmp_path, "-b", "torch-ddp:4", "--dtype", "float64")
    try:
        wait_for_ranks(process, 4)
        time.sleep(0.3)  # under way
        process.send_signal(sent)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code, stderr
    said = "interrupted" if sent == signal.SIGINT else "terminated"
    assert stderr.splitlines()[-1] == f"gradcmp: error: {said}"
    assert gone_within(5, rank_processes) == []
    assert list((tmp_path / "tmp").glob("gradcmp-world-*")) == []
