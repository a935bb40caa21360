"""What ``gradcmp bench`` measures of one backend × dtype × size (__init__.py single-process,
worlds.py distributed, report.py prints them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measurement:
    backend: str
    dtype: str
    rows: int
    seconds: list[float]  # each timed call
    median: float | None
    compile_seconds: float | None
    peak_bytes: int | None  # memory the timed calls added at their peak (None: not measurable)
    data_bytes: int  # X and y in this dtype
    bandwidth_fraction: float | None
    status: str = "ok"
    note: str = ""
    # A distributed backend (worlds.py): its world size, and each world's start-up —
    # apart from ``seconds``, which are then the engine's own time per gradient.
    world_size: int | None = None
    startup_seconds: list[float] = field(default_factory=list)
    startup_median: float | None = None

    @property
    def spread(self) -> tuple[float, float] | None:
        return (min(self.seconds), max(self.seconds)) if self.seconds else None


def unmeasured(name, dtype, rows, data_bytes, status, note) -> Measurement:
    """A row that was not timed: failed or skipped, saying why."""
    return Measurement(name, dtype.name, rows, [], None, None, None, data_bytes, None, status, note)
