"""One error type whose subclasses carry the exit code the CLI returns (docs/design.md,
"Contracts")."""

from __future__ import annotations

EXIT_AGREE = 0
EXIT_DISAGREE = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_INCONCLUSIVE = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class GradcmpError(Exception):
    """An error gradcmp reports in one line: ``[where: ]what is wrong[ (what to do)]``."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text} ({self.hint})" if self.hint else text


class UsageError(GradcmpError):
    """A bad option or option value on the command line or in the Python API."""

    exit_code = EXIT_USAGE


class InputError(GradcmpError):
    """A data file (or loss file) that cannot be read as given; ``where`` is FILE[:LINE]."""

    exit_code = EXIT_USAGE


class Interrupted(GradcmpError):
    """Ctrl-C: the run ends cleanly, with no report."""

    exit_code = EXIT_INTERRUPTED


class BackendError(GradcmpError):
    """A backend that was asked for by name is missing or failed."""

    exit_code = EXIT_BACKEND


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (just ``Type`` when the message is empty): how a
    backend's or a framework's failure is shown in a result's note."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def timed_out(seconds: float) -> str:
    """The note of a backend call that ran past ``--timeout``."""
    return f"timed out after {seconds:g} s (--timeout); the others still ran"
