"""``--timeout`` for code gradcmp does not control: a backend call, a loss being traced."""

from __future__ import annotations

import threading

from ..errors import timed_out


class BackendTimeout(Exception):
    """A backend ran past --timeout."""


# Threads of backends that timed out and still run. Native code (XLA, BLAS) in them can abort
# the interpreter's shutdown, so the CLI ends the process directly while any is alive.
ABANDONED: list[threading.Thread] = []


def call_with_timeout(function, timeout: float | None, name: str = "gradcmp-backend"):
    """``function()``, or BackendTimeout after ``timeout`` seconds. A call that hangs (a
    backend, a side being traced) is left running in a daemon thread (Python cannot stop a
    thread) and ends with the process."""
    if timeout is None:
        return function()
    box: dict = {}

    def target():
        try:
            box["value"] = function()
        except BaseException as exc:  # handed back to the calling thread below
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True, name=name)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        ABANDONED.append(thread)
        raise BackendTimeout(timed_out(timeout))
    if "error" in box:
        raise box["error"]
    return box["value"]
