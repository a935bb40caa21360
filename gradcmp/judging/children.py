"""Forked children of gradcmp: how one is started (Ctrl-C held over the fork), what it does
first (leave Ctrl-C to the main process, die with it, print to stderr), and running the user's
code in one (``run_in_child``, ``run_guarded``) where a crash or a hang cannot take gradcmp
down. The framework workers (workers.py), the tracers of a port's sides, ``bench``'s
measurements and the distributed ranks all start this way."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from contextlib import contextmanager

from ..errors import one_line


def can_fork(framework: str) -> bool:
    """Whether a worker for ``framework`` can be forked safely from this process: not once
    that framework is here, and not once JAX is (its runtime's threads make any fork unsafe,
    and it says so on every fork); torch merely imported starts no thread."""
    return (
        hasattr(os, "fork")
        and "fork" in multiprocessing.get_all_start_methods()
        and framework not in sys.modules
        and "jax" not in sys.modules
    )


@contextmanager
def _sigint_held():
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def fork(process) -> None:
    """``process.start()`` with Ctrl-C held during the fork (it would land in an at-fork hook,
    where Python drops it; it is delivered, as KeyboardInterrupt, right after)."""
    sys.stdout.flush()  # buffered output would be written twice, once by each process
    sys.stderr.flush()
    with _sigint_held():
        process.start()


def become_child(parent: int) -> None:
    """What a forked gradcmp process (a worker, a benchmark) does first: leave Ctrl-C to the
    main process, which ends it; end with the main process however that ends; send what the
    code under test prints to stderr, since stdout carries the report (JSON, JUnit …)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)
    sys.stdout.flush()
    try:
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # streams without a descriptor (CliRunner)
        sys.stdout = sys.stderr


def die_with_parent(parent: int) -> None:
    """End this worker when gradcmp ends, however it ends (SIGTERM from a CI job's cancel,
    SIGKILL): Linux's PR_SET_PDEATHSIG; elsewhere the pipe's end does it at the next send."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the request was in place
        os._exit(1)


def _run_and_send(function: Callable, connection, theirs) -> None:
    become_child(os.getppid())
    theirs.close()
    try:
        connection.send(("done", function()))
    except BaseException as exc:  # handed back as a note; the child ends either way
        connection.send(("error", one_line(exc)))
    connection.close()


def run_in_child(function: Callable, timeout: float | None):
    """``function()`` in a forked child process, its (picklable) result sent back; for code
    that may crash or hang gradcmp (the user's loss, run while tracing it). Raises
    ``ChildFailed`` with a note when it raised, ran past ``timeout`` or died."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_run_and_send, args=(function, sender, receiver), daemon=True, name="gradcmp-trace"
    )
    fork(process)
    sender.close()
    try:
        if not receiver.poll(timeout):
            raise ChildFailed(f"it ran past the time limit per call ({timeout:g} s)")
        try:
            kind, value = receiver.recv()
        except (EOFError, OSError):
            process.join(5)
            code = process.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise ChildFailed(f"its process died ({how})") from None
        if kind == "error":
            raise ChildFailed(value)
        return value
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()


class ChildFailed(Exception):
    """What ``run_in_child`` ran raised, ran too long, or died."""


def run_guarded(function: Callable, timeout: float | None):
    """``function()`` — the user's code — where a crash or a hang cannot take gradcmp down: in
    a forked child where forking is safe, else in a thread left behind after ``timeout``
    seconds. Raises ``ChildFailed`` with a note either way."""
    from .timeouts import BackendTimeout, call_with_timeout

    if can_fork("torch") and can_fork("jax"):
        return run_in_child(function, timeout)
    try:
        return call_with_timeout(function, timeout, "gradcmp-trace")
    except BackendTimeout:
        raise ChildFailed(f"it ran past the time limit per call ({timeout:g} s)") from None
