"""The rich console gradcmp prints to (its own module: listing commands need no more)."""

from __future__ import annotations

from typing import IO

from rich.console import Console


def console_for(stream: IO[str], colour: bool | None = None) -> Console:
    """A rich console: colour on a terminal, plain text when piped or written to a file."""
    console = Console(file=stream, force_terminal=colour, no_color=colour is False)
    if not console.is_terminal:
        # Piped output is not squeezed to 80 columns: a folded number is hard to copy.
        console = Console(file=stream, width=max(console.width, 200), no_color=True)
    return console
