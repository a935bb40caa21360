"""One error type whose subclasses carry the exit code the CLI returns (docs/design.md,
"Contracts").

An error about an option names it the way its reader gave it: the command line as a flag
(``--data``), the Python API as an argument (``data=``). Code that raises such an error does not
spell the option: it puts an :class:`Option` (or a :class:`Given`, the option with its value)
into the message, and the error is spelt when shown, from the table of the boundary it
crossed. The command line's is the default: cli.py prints ``str(error)`` as it always did. The
Python API's entry points re-spell the errors that leave them (:func:`spelt_for_api`); doing
it there, on the error object, holds for an error raised in any thread or worker, which a
context variable read while raising would not.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

EXIT_AGREE = 0
EXIT_DISAGREE = 1
EXIT_USAGE = 2
EXIT_BACKEND = 3
EXIT_INCONCLUSIVE = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

# The two boundaries an error is shown at.
CLI = "cli"
API = "api"

# Options by the name of compare()'s argument → the command line's flag for them.
CLI_FLAGS = {
    "accept": "--accept",
    "backends": "-b",
    "data": "--data",
    "device": "--device",
    "dtypes": "--dtype",
    "hidden": "--hidden",
    "loss": "--loss",
    "matmul_precision": "--matmul-precision",
    "model": "--model",
    "params": "--param",
    "seed": "--seed",
    "target": "--target",
}
# … → the Python API's argument: compare()'s keywords (gradcmp/api.py) are the options' names.
API_ARGUMENTS = {name: name for name in CLI_FLAGS}


@dataclass(frozen=True)
class Option:
    """An option named in a message: ``--data`` on the command line, ``data=`` in Python."""

    name: str


@dataclass(frozen=True)
class Given:
    """An option with a value (the one given, or an example): ``--hidden 16,8`` on the command
    line, ``hidden=(16, 8)`` in Python; the value is written the way each reader writes it."""

    name: str
    text: str  # as typed after the flag: "16,8"
    value: object  # as the Python argument: (16, 8)


# A message or hint: plain text, or text and the options it names, spelt when shown.
Text = str | tuple[str | Option | Given, ...]


def spell(text: Text, boundary: str = CLI) -> str:
    """``text`` with its options written for ``boundary`` (CLI or API)."""
    if isinstance(text, str):
        return text
    return "".join(_spell_part(part, boundary) for part in text)


def _spell_part(part: str | Option | Given, boundary: str) -> str:
    if isinstance(part, str):
        return part
    if boundary == API:
        argument = API_ARGUMENTS[part.name]
        return f"{argument}=" if isinstance(part, Option) else f"{argument}={part.value!r}"
    flag = CLI_FLAGS[part.name]
    return flag if isinstance(part, Option) else f"{flag} {part.text}"


class GradcmpError(Exception):
    """An error gradcmp reports in one line: ``[where: ]what is wrong[ (what to do)]``.

    ``message`` and ``hint`` may name options (:data:`Text`). ``option`` is the option whose
    value is wrong where the message does not say so itself ("unknown dtype 'float8'"): the
    Python API shows its argument in front (``dtypes: unknown dtype 'float8'``); the command
    line shows the message as it is (the flag is on the line the user just typed).
    """

    exit_code = EXIT_INTERNAL

    def __init__(
        self,
        message: Text,
        *,
        where: str | None = None,
        hint: Text | None = None,
        option: str | None = None,
    ):
        self.text, self.hint_text = message, hint
        self.where = where
        self.option = option
        self.boundary = CLI  # the API's entry points change it (spelt_for_api)
        super().__init__(self.message)

    def spell_for(self, boundary: str) -> None:
        """Show this error in ``boundary``'s words (``args``, and so ``repr``, too)."""
        self.boundary = boundary
        self.args = (self.message,)

    @property
    def message(self) -> str:
        return spell(self.text, self.boundary)

    @property
    def hint(self) -> str | None:
        return None if self.hint_text is None else spell(self.hint_text, self.boundary)

    def __str__(self) -> str:
        where = self.where
        if where is None and self.option is not None and self.boundary == API:
            where = API_ARGUMENTS[self.option]
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} ({self.hint})" if self.hint else text


@contextmanager
def spelt_for_api() -> Iterator[None]:
    """Around, or as a decorator of, a Python API entry point: a GradcmpError leaving it names
    the API's arguments."""
    try:
        yield
    except GradcmpError as exc:
        exc.spell_for(API)
        raise


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
    return f"timed out after {seconds:g} s, the time limit per call; the others still ran"
