"""Start a world of rank processes, collect what each sends back, and leave nothing behind.

Ranks are never forked from gradcmp: a forked copy of a process that already runs threads
(BLAS, XLA, gloo) can deadlock. A world of one is a fresh interpreter (``python -m
gradcmp.distributed.rank``); the ranks of a larger world are forked from one fresh interpreter
that imported their framework once and runs a single thread (``zygote.py``), which saves each
torch rank seconds of imports. Each rank

- runs one compute thread (``OMP_NUM_THREADS=1``), so N ranks on N cores do not fight;
- lives in a session of its own: Ctrl-C in the terminal reaches gradcmp only, which ends the
  whole world (a rank that got the signal itself would die mid-collective and hang the others);
- dies with gradcmp however gradcmp ends (SIGTERM, SIGKILL: Linux's PR_SET_PDEATHSIG);
- writes its result to a file of its own (atomically) before it tears down the process group,
  so a rank that aborts at teardown after sending is a note, not a failure, and one that does
  not exit at all is ended once every result is in (TEARDOWN_SECONDS);
- fails its world if it ends without a result, whatever its exit code;
- takes with it, when its world ends, whatever it started (its session is killed whole).

torch ranks meet at a TCPStore that rank 0 opens on 127.0.0.1 at a port the OS picks (no race
between parallel runs); it writes the port to the world's directory, where the others read it.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

from ..errors import timed_out

JOB_FILE = "job.pkl"
PORT_FILE = "port"
POLL_SECONDS = 0.02
# After one rank fails, how long the others may take to fail too (their own reason is
# usually clearer than "killed"): then the world is ended.
GRACE_SECONDS = 2.0
# After every rank has sent its result, how long they may take to exit (tearing down the
# process group, the interpreter's shutdown) before they are ended. A rank that never exits (a
# non-daemon thread a loss started, a teardown that waits on a peer) must not hang gradcmp
# until --timeout — or forever without one — when every result is already in. Ending one is
# no note: slow is not wrong (a rank skips the interpreter's finalization, rank.py, but
# destroying a process group can still take seconds on a loaded machine). A rank that exits
# non-zero within it is a note.
TEARDOWN_SECONDS = 2.0
# Worlds of several ranks fork them from one interpreter that imported their framework once
# (zygote.py); False: every rank a fresh interpreter.
FORK_RANKS = True


class SkipWorld(Exception):
    """Raised in a rank: this world cannot compute this problem (every rank decides alike,
    before any collective); the backend is skipped with the reason."""


@dataclass
class WorldOutcome:
    """What a world gave back: each rank's result (None where it sent none), and notes."""

    results: list[dict | None]
    failure: str = ""  # set when the world as a whole failed
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time from the first spawn to the last result


def result_file(directory: str, rank: int) -> str:
    return os.path.join(directory, f"rank{rank}.pkl")


def log_file(directory: str, rank: int) -> str:
    return os.path.join(directory, f"rank{rank}.log")


def pid_file(directory: str, rank: int) -> str:
    """Where a world's zygote writes the pid of a rank it started."""
    return os.path.join(directory, f"rank{rank}.pid")


def exit_file(directory: str, rank: int) -> str:
    """Where a world's zygote writes a rank's exit status once it has ended."""
    return os.path.join(directory, f"rank{rank}.exit")


class World:
    """A world of rank processes, started at construction; ``wait`` collects what they sent
    and ends them (``end`` alone ends them early: Ctrl-C, an error elsewhere)."""

    def __init__(
        self,
        job: dict,
        processes: int,
        timeout: float | None,
        env: dict[str, str] | None = None,
    ):
        self.timeout = timeout
        self.directory = tempfile.mkdtemp(prefix="gradcmp-world-")
        self.start = time.monotonic()
        self.ranks: list[subprocess.Popen] = []
        self.zygote: subprocess.Popen | None = None
        try:
            with open(os.path.join(self.directory, JOB_FILE), "wb") as f:
                pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
            child_env = {**os.environ, **_one_thread(), **(env or {})}
            command = [sys.executable, "-m", "gradcmp.distributed.rank", self.directory]
            if processes > 1 and FORK_RANKS:  # one interpreter imports, N ranks fork from it
                zygote = [sys.executable, "-m", "gradcmp.distributed.zygote", self.directory]
                self.zygote = subprocess.Popen(
                    [*zygote, str(processes), str(os.getpid())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env=child_env,
                    start_new_session=True,
                )
                self.ranks = [_ForkedRank(self.zygote, self.directory, r) for r in range(processes)]
                return
            for rank in range(processes):
                with open(log_file(self.directory, rank), "wb") as log:
                    self.ranks.append(
                        subprocess.Popen(
                            [*command, str(rank), str(os.getpid())],
                            stdin=subprocess.DEVNULL,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                            env=child_env,
                            start_new_session=True,
                        )
                    )
        except BaseException:
            self.end()
            raise

    def wait(self) -> WorldOutcome:
        try:
            failure = _wait(self.ranks, self.directory, self.start, self.timeout)
            if failure and any(getattr(p, "lost_with_zygote", False) for p in self.ranks):
                # The ranks died with the process that forked them: that is the cause.
                how = _exit_text(self.zygote.returncode)
                failure = f"the process that forked the ranks ended ({how}): every rank with it"
            results = [_read_result(self.directory, r) for r in range(len(self.ranks))]
            unreadable = [r for r, result in enumerate(results) if result is None]
            if not failure and unreadable:  # sent, but not readable: no result to judge
                failure = f"rank {unreadable[0]} failed: its result file could not be read"
            notes = []
            for rank, p in enumerate(self.ranks):
                # (A rank still tearing down — returncode None — is ended below, unnoted.)
                if results[rank] is not None and p.returncode not in (0, None):
                    how = _exit_text(p.returncode).replace("exit code", "exited with code")
                    notes.append(f"rank {rank} {how} after sending its results")
            return WorldOutcome(results, failure, notes, time.monotonic() - self.start)
        finally:
            self.end()

    def end(self) -> None:
        _end(self.ranks)  # the ranks started so far
        if self.zygote is not None:  # then the zygote, so it forks no more (PDEATHSIG ends
            _end([self.zygote])  # those it forked), and the sessions of those it forked
            _end(self.ranks)
        shutil.rmtree(self.directory, ignore_errors=True)


class _ForkedRank:
    """A rank the world's zygote forked (zygote.py), seen as a Popen is: ``pid`` once started,
    ``poll``, ``wait`` and ``returncode`` from the status the zygote wrote. A rank without a
    status once the zygote has ended was killed with it (PR_SET_PDEATHSIG), or never started
    (then it ended as the zygote did: its error is in the rank's log)."""

    def __init__(self, zygote: subprocess.Popen, directory: str, rank: int):
        self.zygote = zygote
        self._pid_file = pid_file(directory, rank)
        self._exit_file = exit_file(directory, rank)
        self.returncode: int | None = None
        self.lost_with_zygote = False  # ended because its zygote ended
        self._pid: int | None = None

    @property
    def pid(self) -> int | None:
        if self._pid is None:
            self._pid = _read_int(self._pid_file)
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is None:
            ended = self.zygote.poll() is not None  # before the status: it wrote that first
            code = _read_int(self._exit_file)
            if code is not None:
                self.returncode = code
            elif ended:  # killed with the zygote, or never started
                # A zygote killed by a signal took its ranks with it (PR_SET_PDEATHSIG), even
                # one whose pid it had not written yet; one that exited before forking wrote
                # its error into every rank's log.
                lost = self.pid is not None or self.zygote.returncode < 0
                self.returncode = -signal.SIGKILL if lost else self.zygote.returncode
                self.lost_with_zygote = lost
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("rank", timeout)
            time.sleep(POLL_SECONDS)
        return self.returncode


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def run_world(
    job: dict, processes: int, timeout: float | None, env: dict[str, str] | None = None
) -> WorldOutcome:
    """Spawn ``processes`` ranks on ``job`` and wait for all of them (or ``timeout`` seconds)."""
    return World(job, processes, timeout, env).wait()


def _one_thread() -> dict[str, str]:
    return {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def _wait(ranks: list[subprocess.Popen], directory: str, start: float, timeout) -> str:
    """'' when every rank sent its result (and exited, or had TEARDOWN_SECONDS to); else why
    the world was ended (the ranks are killed by the caller's ``_end``)."""
    first_failure_at = all_sent_at = None
    ended_at: dict[int, float] = {}  # rank → when it was first seen ended
    while True:
        now = time.monotonic()
        codes = [p.poll() for p in ranks]
        for rank, code in enumerate(codes):
            if code is not None:
                ended_at.setdefault(rank, now)
        if all(code is not None for code in codes):
            break
        if first_failure_at is None and _failed(ranks, directory):
            first_failure_at = now
        if first_failure_at is not None and now - first_failure_at > GRACE_SECONDS:
            break
        if all_sent_at is None and all(_sent(directory, r) for r in range(len(ranks))):
            all_sent_at = now
        if all_sent_at is not None and now - all_sent_at > TEARDOWN_SECONDS:
            return ""  # every result is in: the ranks still running are ended
        if timeout is not None and now - start > timeout:
            return f"{timed_out(timeout)} (all {len(ranks)} ranks ended)"
        time.sleep(POLL_SECONDS)
    failed = _failed(ranks, directory)
    if not failed:
        return ""
    # The rank that failed first says why; the others usually only lost their peer ("connection
    # closed by peer"). A rank that names an error of its own comes first; else the first to
    # end (one that died without a word, ``os._exit(3)``, before the others lost it).
    first = min(failed, key=lambda r: (not _own_error(directory, r), ended_at.get(r, now), r))
    return f"rank {first} failed: {_why(directory, first, ranks[first].returncode)}"


def _why(directory: str, rank: int, code: int) -> str:
    """What the rank said (its ``gradcmp-rank:`` line), else how it ended and, apart, the
    last thing it printed (a traceback's last line, gloo's abort message — or only a print of
    the loss, so it is not passed off as the reason)."""
    said = _rank_error(log_file(directory, rank))
    if said:
        return said
    how = _exit_text(code) + (" without sending its results" if code == 0 else "")
    last = _last_line(log_file(directory, rank))
    return f"{how} (its last output: {last})" if last else how


def _failed(ranks: list[subprocess.Popen], directory: str) -> list[int]:
    """The ranks that ended without sending a result — whatever their exit code: a rank
    that exits 0 without one (``os._exit(0)`` in a loss) failed as much as one that crashed."""
    return [r for r, p in enumerate(ranks) if p.poll() is not None and not _sent(directory, r)]


def _exit_text(code: int) -> str:
    """``exit code 3``; ``killed by SIGSEGV`` for a rank a signal ended (Popen's code -11)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _sent(directory: str, rank: int) -> bool:
    return os.path.exists(result_file(directory, rank))


def _own_error(directory: str, rank: int) -> bool:
    """Whether the rank's log names an error of its own (not a lost connection to a peer)."""
    text = _last_line(log_file(directory, rank)).lower()
    return bool(text) and not any(
        w in text for w in ("connection", "peer", "closed", "broken pipe", "signal")
    )


def _rank_error(path: str) -> str:
    """The one line a rank's ``main`` printed for its error (``gradcmp-rank: …``), or ''."""
    for line in reversed(_lines(path)):
        if line.startswith("gradcmp-rank: "):
            return line.removeprefix("gradcmp-rank: ")
    return ""


def _last_line(path: str) -> str:
    """The rank's last error line: what its ``main`` printed, else the log's last line."""
    lines = _lines(path)
    return _rank_error(path) or (lines[-1][:300] if lines else "")


def _lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.strip() for line in f if line.strip()]
    except OSError:
        return []


def _read_result(directory: str, rank: int) -> dict | None:
    try:
        with open(result_file(directory, rank), "rb") as f:
            return pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def _end(ranks: list[subprocess.Popen]) -> None:
    """Kill every rank's session — the rank and anything it started, even where the rank
    itself already exited (a child it left behind is still in its process group) — and reap
    the ranks."""
    for p in ranks:
        # (While a child of a reaped rank lives, the rank's pid names its group and is not
        # given to another process.)
        if p.pid is None:  # not forked yet: it dies with its zygote
            continue
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # the session is empty: nothing to end
            pass
    for p in ranks:
        if p.pid is None:  # (its zygote is ended next: it never runs)
            continue
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - a process that ignores SIGKILL
            pass
