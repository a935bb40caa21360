"""A world of several ranks imports its framework once: one interpreter (the zygote) imports it
and forks the ranks, each in a session of its own, each its own log. A zygote that runs a
thread after importing starts fresh interpreters instead; one whose framework does not import
makes that every rank's reason; and ending the world ends the zygote and every rank it made.

The framework here is a stand-in ``torch`` package put first on the ranks' path: its
``set_num_threads`` (the first call a torch rank makes) records the rank's process and waits."""

from __future__ import annotations

import os
import signal
import time

import pytest

from gradcmp.distributed import world as world_module

pytestmark = pytest.mark.usefixtures("no_rank_process_survives")

PROBE = """
import os, sys, time

SEEDED_IN = None


def seed():
    global SEEDED_IN
    SEEDED_IN = os.getpid()


def set_num_threads(n):
    with open(os.path.join(os.environ["GRADCMP_TEST_PROBE"], str(os.getpid())), "w") as f:
        f.write(f"{os.getppid()} {os.getsid(0)} {int(SEEDED_IN == os.getpid())}")
    time.sleep(600)
"""
THREAD = """
import threading
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
"""


def stand_in(tmp_path, body: str) -> dict[str, str]:
    """The environment that puts a ``torch`` made of ``body`` first on the ranks' path."""
    package = tmp_path / "stand-in" / "torch"
    (package / "distributed").mkdir(parents=True)
    (package / "__init__.py").write_text(body)
    (package / "distributed" / "__init__.py").write_text("")
    probe = tmp_path / "probe"
    probe.mkdir()
    return {"PYTHONPATH": str(tmp_path / "stand-in"), "GRADCMP_TEST_PROBE": str(probe)}


def probes(env: dict[str, str], count: int) -> dict[int, tuple[int, int, int]]:
    """pid → (parent pid, session, whether torch was seeded in it) of each rank that reached
    torch, once ``count`` have."""
    deadline = time.monotonic() + 120
    directory = env["GRADCMP_TEST_PROBE"]
    while len(os.listdir(directory)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    found = {}
    for name in os.listdir(directory):
        with open(os.path.join(directory, name)) as f:
            text = f.read()
        if text:
            parent, session, seeded = map(int, text.split())
            found[int(name)] = (parent, session, seeded)
    assert len(found) == count, found
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return bool(f.read())  # a zombie's is empty: it is gone
    except OSError:
        return False


def command_line(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


JOB = {"engine": "torch-dist", "world_size": 3}
ZYGOTE = "gradcmp.distributed.zygote"


def test_the_ranks_are_forked_from_one_interpreter_each_in_a_session_of_its_own(tmp_path):
    env = stand_in(tmp_path, PROBE)
    world = world_module.World(JOB, 3, timeout=None, env=env)
    try:
        found = probes(env, 3)
        assert world.zygote is not None
        assert sorted(found) == sorted(rank.pid for rank in world.ranks)
        for pid, (parent, session, seeded) in found.items():
            assert parent == world.zygote.pid  # forked by the zygote, not spawned by gradcmp
            assert session == pid  # its own session: Ctrl-C reaches gradcmp only
            assert ZYGOTE in command_line(pid)  # a fork: the zygote's own command line
            assert seeded  # torch's generator seeded afresh: not the zygote's stream
        assert all(rank.poll() is None for rank in world.ranks)
    finally:
        world.end()
    assert [rank.returncode for rank in world.ranks] == [-signal.SIGKILL] * 3
    assert world.zygote.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in found) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in [*found, world.zygote.pid])


def test_a_zygote_running_a_thread_starts_fresh_interpreters_instead(tmp_path):
    env = stand_in(tmp_path, PROBE + THREAD)
    world = world_module.World(JOB, 2, timeout=None, env=env)
    try:
        found = probes(env, 2)
        for pid, (parent, session, _) in found.items():
            assert parent == world.zygote.pid and session == pid
            assert ZYGOTE not in command_line(pid)  # a fresh interpreter: a rank's own
    finally:
        world.end()
    assert [rank.returncode for rank in world.ranks] == [-signal.SIGKILL] * 2


def test_the_timeout_ends_the_zygote_and_every_rank(tmp_path):
    env = stand_in(tmp_path, PROBE)
    world = world_module.World(JOB, 3, timeout=3.0, env=env)
    outcome = world.wait()
    assert outcome.failure.startswith("timed out after 3 s") and "all 3 ranks ended" in (
        outcome.failure
    )
    assert outcome.results == [None] * 3
    assert world.zygote.poll() is not None
    assert all(rank.returncode is not None for rank in world.ranks)


def test_a_framework_that_does_not_import_is_every_ranks_reason(tmp_path):
    env = stand_in(tmp_path, 'raise ImportError("no torch here")\n')
    outcome = world_module.World(JOB, 2, timeout=60.0, env=env).wait()
    assert outcome.failure == "rank 0 failed: ImportError: no torch here"
    assert outcome.results == [None, None]


def test_a_world_ended_while_its_framework_imports_ends_at_once(tmp_path):
    """No rank is forked yet: the zygote is ended, not waited for, and forks none."""
    env = stand_in(tmp_path, "import time\ntime.sleep(8)\n" + PROBE)
    began = time.monotonic()
    outcome = world_module.World(JOB, 3, timeout=1.0, env=env).wait()
    assert time.monotonic() - began < 6
    assert outcome.failure.startswith("timed out after 1 s")
    time.sleep(8.5)  # past the import: a zygote still alive would fork now
    assert os.listdir(env["GRADCMP_TEST_PROBE"]) == []


def test_ranks_that_die_with_their_zygote_name_it(tmp_path):
    body = PROBE.replace("    time.sleep(600)", "    os.kill(os.getppid(), 9)\n    time.sleep(600)")
    env = stand_in(tmp_path, body)
    outcome = world_module.World(JOB, 2, timeout=60.0, env=env).wait()
    assert outcome.failure == (
        "the process that forked the ranks ended (killed by SIGKILL): every rank with it"
    )
