"""Framework backends in worker processes, one per framework, running beside each other.

Importing torch and jax costs seconds each and nothing in the main process needs either, so
the CLI forks one worker per framework before it computes the reference: the imports, the
framework calls and the reference then overlap, and each framework's global state (threads,
x64 flag, caches) stays in its own process. Forking shares the dataset's pages with the
workers instead of copying them, and hands over everything a loss file defined.

A worker runs its calls one after another and sends each outcome back through a pipe. A call
that runs past ``--timeout``, or a worker that dies (a segfault in native code), fails that one
call; a fresh worker takes over the calls still to run. On a large dataset the workers take
turns for their calls (``_turn``): each call's working memory (autodiff's intermediates) is of
the order of the data, and two at once would add up. Their imports still overlap.

Forking is only safe before a framework has started its own threads, so a framework already
imported in this process (a loss file that imports torch at the top, a test suite) runs its
backends in this process instead.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..environment import framework_state
from ..errors import one_line, timed_out
from .children import become_child, fork
from .memory import large_blocks_mapped

# The backends a worker takes: those that import a framework (the rest run here; they are
# numpy or plain Python, quick to start and safe to run anywhere).
FRAMEWORKS = ("torch", "jax")


def framework_of(backend) -> str | None:
    return next((f for f in FRAMEWORKS if f in backend.requires), None)


def cache_directory() -> str | None:
    """Where workers keep compiled code between runs: ``$GRADCMP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/gradcmp`` (``~/.cache/gradcmp``); ``GRADCMP_CACHE_DIR=`` (empty) turns
    the cache off."""
    given = os.environ.get("GRADCMP_CACHE_DIR")
    if given is not None:
        return given or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gradcmp")


def _prepare(framework: str) -> None:
    """Per-framework set-up a worker may do because its state is its own.

    Eager JAX compiles every primitive the first time it meets it (≈0.3 s per dtype for a
    small loss, most of a default run's time); XLA's persistent compilation cache keeps those
    executables on disk, keyed by the computation, the compile options and the jax version,
    so later runs load them instead (the same executables: results do not change). gradcmp
    sets this only in its own worker, never in a process that imported jax itself.
    """
    directory = cache_directory()
    if framework != "jax" or directory is None:
        return
    try:
        import jax

        jax.config.update("jax_compilation_cache_dir", os.path.join(directory, "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    except Exception:  # an older jax without these options: run without the cache
        pass


Call = tuple[str, str]  # (backend name, dtype name)


@dataclass
class WorkerResults:
    """What the workers sent: per call an outcome (the runner's ``Outcome``), per backend
    the seconds its setup (the framework's import) took, or why it failed."""

    outcomes: dict[Call, object] = field(default_factory=dict)
    setup_seconds: dict[str, float] = field(default_factory=dict)
    setup_errors: dict[str, str] = field(default_factory=dict)
    environment: dict = field(default_factory=dict)  # the frameworks' state in the workers


class _Worker:
    def __init__(
        self,
        framework: str,
        calls: list[Call],
        setup: Callable,
        execute: Callable,
        context,
        turns: int | None = None,
    ) -> None:
        self.framework = framework
        self.turns = turns
        self.pending = list(calls)
        self.setup = setup
        self.execute = execute
        self.context = context
        self.process = None
        self.connection = None
        self.started_call: Call | None = None  # begun, not yet done
        self.clock = None  # shared with the worker: when its call began to run (0: not yet)

    def call_started(self) -> float | None:
        """When the begun call started to run (monotonic), None while it waits for its turn.
        The worker writes it to shared memory, not to the pipe: the parent reads no pipe while
        it computes the reference, and a worker must never wait on a full pipe holding the
        turn, nor have that wait counted against its call's time limit."""
        if self.started_call is None or self.clock is None:
            return None
        return self.clock.value or None

    def start(self) -> None:
        receiver, sender = self.context.Pipe(duplex=False)
        self.clock = self.context.RawValue("d", 0.0)
        self.process = self.context.Process(
            target=_work,
            args=(
                self.framework,
                self.pending,
                self.setup,
                self.execute,
                sender,
                receiver,
                self.turns,
                self.clock,
            ),
            daemon=True,
            name="gradcmp-worker",
        )
        self.connection = receiver
        self.started_call = None
        fork(self.process)
        sender.close()

    def stop(self) -> None:
        if self.process is not None and self.process.pid is not None:  # it was started
            if self.process.is_alive():
                self.process.kill()
            self.process.join()
        if self.connection is not None:
            self.connection.close()
        self.process = self.connection = None


@contextmanager
def _turn(turns: int | None) -> Iterator[None]:
    """Wait for this worker's turn to run a call, and end it after: an exclusive POSIX record
    lock on the file ``turns`` (a descriptor every worker inherits). Such a lock belongs to the
    process holding it, so a worker that is killed (past the timeout) or dies lets go of it
    with its last breath: the next worker is never left waiting. ``None``: no turns."""
    if turns is None:
        yield
        return
    import fcntl

    try:
        fcntl.lockf(turns, fcntl.LOCK_EX)
    except OSError:  # a file system without POSIX locks: the calls overlap, as on small data
        yield
        return
    try:
        yield
    finally:
        fcntl.lockf(turns, fcntl.LOCK_UN)


def _work(
    framework: str,
    calls: list[Call],
    setup: Callable,
    execute: Callable,
    connection,
    theirs,
    turns: int | None,
    clock,
) -> None:
    """The worker's body: set each backend up once, run its calls, send every event.
    ``turns``: the descriptor whose lock is the turn (None: no turns); ``clock``: shared
    memory for when the current call started (``_Worker.call_started``)."""
    become_child(os.getppid())
    large_blocks_mapped()  # a call's freed tensors go back to the system (memory.py)
    theirs.close()  # the main process's end: only it reads
    set_up: dict[str, str] = {}  # backend → why its setup failed, or ''
    for name, dtype in calls:
        if name not in set_up:
            start = time.perf_counter()
            try:
                if not set_up:  # the first backend's setup time includes the framework's
                    _prepare(framework)
                setup(name)
                set_up[name] = ""
            except Exception as exc:  # a broken install fails this backend, not the run
                set_up[name] = one_line(exc)
            connection.send(("setup", name, time.perf_counter() - start, set_up[name]))
            connection.send(("environment", framework_state()))
        if set_up[name]:
            continue
        clock.value = 0.0  # (before "begin": the parent never reads the last call's start)
        connection.send(("begin", (name, dtype)))  # never sent holding the turn
        with _turn(turns):
            clock.value = started = time.monotonic()  # the call's time limit starts here
            outcome = execute(name, dtype)
        connection.send(("environment", framework_state()))  # the GPU a call used, too
        connection.send(("done", (name, dtype), outcome, started, time.monotonic()))
    connection.close()


def run_in_workers(
    groups: dict[str, list[Call]],
    setup: Callable,
    execute: Callable,
    timeout: float | None,
    failed: Callable[[str], object],
    while_waiting: Callable[[], None] = lambda: None,
    take_turns: bool = False,
) -> WorkerResults:
    """Run each group's calls in its own forked worker; meanwhile call ``while_waiting``
    (the reference) here. ``setup(name)`` imports a backend's framework,
    ``execute(name, dtype)`` returns a picklable outcome;
    ``failed(note)`` makes the outcome of a call that timed out or whose worker died.
    ``take_turns``: one worker's call at a time (``_turn``), for a large dataset."""
    context = multiprocessing.get_context("fork")
    with _turns_file(take_turns) as turns:
        fd = turns.fileno() if turns is not None else None
        workers = [
            _Worker(f, calls, setup, execute, context, fd) for f, calls in groups.items() if calls
        ]
        return _run_workers(workers, timeout, failed, while_waiting)


@contextmanager
def _turns_file(wanted: bool):
    """An anonymous file whose lock the workers take turns for; None where no turns are
    wanted or no file can be made (then the calls overlap)."""
    if not wanted:
        yield None
        return
    try:
        file = tempfile.TemporaryFile()
    except OSError:
        yield None
        return
    with file:
        yield file


def _run_workers(workers: list[_Worker], timeout, failed, while_waiting) -> WorkerResults:
    results = WorkerResults()
    try:
        for worker in workers:
            worker.start()
        while_waiting()
        while any(w.connection is not None for w in workers):
            _serve(workers, results, timeout, failed)
    finally:
        for worker in workers:
            worker.stop()
    return results


def _serve(workers: list[_Worker], results: WorkerResults, timeout, failed) -> None:
    """Read what is ready, or wait until the nearest deadline; restart a worker past it. A
    begun call that has not started to run (waiting for its turn) has no deadline yet: the
    wait is then short, to look at its clock again."""
    live = [w for w in workers if w.connection is not None]
    starts = {w: w.call_started() for w in live} if timeout else {}
    deadlines = [start + timeout for start in starts.values() if start is not None]
    wait = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
    if timeout and any(w.started_call and starts[w] is None for w in live):
        wait = min(wait if wait is not None else CLOCK_POLL, CLOCK_POLL)
    ready = multiprocessing.connection.wait([w.connection for w in live], wait)
    for worker in live:
        if worker.connection in ready:
            _receive(worker, results, failed, timeout)
        elif starts.get(worker) is not None and time.monotonic() >= starts[worker] + timeout:
            _give_up_on(worker, worker.started_call, failed(timed_out(timeout)), results)


# How often the parent looks at the clock of a call waiting for its turn (seconds).
CLOCK_POLL = 0.25


def _receive(worker: _Worker, results: WorkerResults, failed, timeout) -> None:
    try:
        message = worker.connection.recv()
    except (EOFError, OSError):  # the worker ended: normally, or killed by a crash
        worker.process.join(5)
        code = worker.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        if worker.started_call is not None:
            call = worker.started_call
            _give_up_on(worker, call, failed(f"the worker process died ({how})"), results)
        else:  # all done, or it died setting a backend up: what is left cannot run
            for call in worker.pending:
                results.outcomes[call] = failed(f"the worker process died in setup ({how})")
            worker.stop()
            worker.pending = []
        return
    kind = message[0]
    if kind == "environment":
        results.environment.update(message[1])
    elif kind == "setup":
        _, name, seconds, error = message
        results.setup_seconds[name] = seconds
        if error:
            results.setup_errors[name] = error
            worker.pending = [c for c in worker.pending if c[0] != name]
    elif kind == "begin":
        _, worker.started_call = message
    else:
        _, call, outcome, started, finished = message
        if timeout is not None and finished - started > timeout:  # read late, ran too long
            outcome = failed(timed_out(timeout))
        results.outcomes[call] = outcome
        worker.pending.remove(call)
        worker.started_call = None


def _give_up_on(worker: _Worker, call: Call, outcome, results: WorkerResults) -> None:
    """Fail ``call``, end its worker, and start a fresh one for the calls after it."""
    results.outcomes[call] = outcome
    worker.stop()
    worker.pending = [c for c in worker.pending if c != call]
    # Backends set up before are set up again in the new worker (their setup is an import).
    if worker.pending:
        worker.start()
