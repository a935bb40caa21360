"""The rich console gradcmp prints to (its own module: listing commands need no more)."""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console


def console_for(stream: IO[str], colour: bool | None = None) -> Console:
    """A rich console: colour on a terminal, plain text when piped or written to a file."""
    console = Console(file=stream, force_terminal=colour, no_color=colour is False)
    if not console.is_terminal:
        # Piped output is as wide as COLUMNS says where it is set (`COLUMNS=80 gradcmp run |
        # less`), else 200 columns: a line a pager folds is hard to read.
        columns = os.environ.get("COLUMNS", "")
        width = int(columns) if columns.isdigit() and int(columns) > 0 else 200
        console = Console(file=stream, width=width, no_color=True)
    return console
