"""``gradcmp bench`` for distributed backends (``torch-ddp:N``, ``jax-sharded:N`` …): the time
per gradient against the world size, and the world's start-up apart.

A distributed backend's ``compute`` starts a world (N rank processes; for JAX one process with
N devices) on every call, so timing ``compute`` would time the start-up, not the gradient. Each
(backend, rows) instead runs ``repeat`` worlds through the backend's own ``compute_all`` —
every dtype in one world, as ``gradcmp run`` does — the worlds of all backends interleaved
(round r runs each backend once, the order rotated every round) so that the machine's load
falls alike on every world size. Per backend × dtype × rows:

- per gradient (``seconds``, ``median``): the engine's own time for that dtype's gradient, as
  the world reports it (the backend's ``run_seconds``): torch — the forward+backward of each
  rank's rows through DDP/FSDP2 (or the loss file's step), the slowest rank's, the first of
  that dtype in its process, as ``gradcmp run`` times it; JAX — the compiled call, its compile
  apart (``compile_seconds``, the median over the worlds).
- start-up (``startup_seconds``, ``startup_median``): the rest of the world's wall time as
  its caller waits for it (``compute_all``, from the spawn to the last rank's exit, the job
  and the results pickled): processes, the framework's import, the process group, wrapping the
  engine, teardown — the world's wall time less every dtype's gradient and compile. One figure
  per world, on each of its dtypes' rows.

Neither the peak memory (the ranks' memory is not this process's) nor the bandwidth fraction
(N ranks read at once) is reported for a world.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from ..backends import BACKENDS
from ..backends.base import SkipBackend
from ..dtypes import DType
from ..errors import one_line
from .measurement import Measurement, unmeasured

# The longest one world may take (start-up, every dtype, teardown) before it is ended.
WORLD_TIMEOUT = 900.0


def is_world(name: str) -> bool:
    """Whether backend ``name`` computes in a world of its own (``ENGINE:N``)."""
    backend = BACKENDS[name]
    return hasattr(backend, "compute_all") and hasattr(backend, "world_size")


class _Samples:
    """What the worlds of one (backend, rows) gave, per dtype."""

    def __init__(self):
        self.seconds: dict[str, list[float]] = {}
        self.compile: dict[str, list[float]] = {}
        self.startup: dict[str, list[float]] = {}
        self.outcome: dict[str, tuple[str, str]] = {}  # dtype → (status, note) when not ok

    def add_world(self, answers: dict, wall: float) -> None:
        done = {d: a for d, a in answers.items() if not isinstance(a, Exception)}
        spent = sum((a.run_seconds or 0.0) + (a.compile_seconds or 0.0) for a in done.values())
        startup = max(0.0, wall - spent)
        for dtype, answer in answers.items():
            if isinstance(answer, Exception):
                self.fail(dtype, answer)
                continue
            self.seconds.setdefault(dtype, []).append(answer.run_seconds)
            if answer.compile_seconds is not None:
                self.compile.setdefault(dtype, []).append(answer.compile_seconds)
            self.startup.setdefault(dtype, []).append(startup)

    def fail(self, dtype: str, exc: BaseException) -> None:
        if isinstance(exc, SkipBackend):
            self.outcome[dtype] = ("skipped", str(exc))
        else:
            text = str(exc).strip()
            note = text.splitlines()[0] if text else one_line(exc)
            self.outcome.setdefault(dtype, ("failed", note))


def run_worlds(
    problems: list,
    names: list[str],
    dtypes: list[DType],
    repeat: int,
    progress: Callable = lambda m: None,
) -> list:
    """One Measurement per backend × dtype × size, for the distributed backends ``names``."""

    measurements = []
    for problem in problems:
        samples = {name: _Samples() for name in names}
        for name in names:  # dtypes the engine cannot reduce: no world for them
            for dtype in dtypes:
                if dtype.name not in BACKENDS[name].dtypes:
                    why = SkipBackend(f"{name} does not compute in {dtype.name}")
                    samples[name].outcome[dtype.name] = ("skipped", str(why))
        for round_ in range(repeat):
            shift = round_ % len(names) if names else 0
            for name in names[shift:] + names[:shift]:
                # A dtype a world skipped or failed is not tried again (it would do the same).
                wanted = [d for d in dtypes if d.name not in samples[name].outcome]
                if not wanted:
                    continue
                start = time.perf_counter()
                try:
                    answers = BACKENDS[name].compute_all(problem, wanted, WORLD_TIMEOUT)
                except Exception as exc:  # the world could not even start
                    for dtype in wanted:
                        samples[name].fail(dtype.name, exc)
                    continue
                samples[name].add_world(answers, time.perf_counter() - start)
        for name in names:
            for dtype in dtypes:
                measurement = _measurement(name, problem, dtype, samples[name], unmeasured)
                measurements.append(measurement)
                progress(measurement)
    return measurements


def _measurement(name: str, problem, dtype: DType, samples: _Samples, unmeasured):

    rows = problem.data.rows
    X, y = problem.inputs(dtype)
    data_bytes = X.nbytes + y.nbytes
    seconds = samples.seconds.get(dtype.name, [])
    if dtype.name in samples.outcome or not seconds:
        status, note = samples.outcome.get(dtype.name, ("failed", "no world finished"))
        return unmeasured(name, dtype, rows, data_bytes, status, note)
    compile_seconds = samples.compile.get(dtype.name)
    startup = samples.startup[dtype.name]
    return Measurement(
        name,
        dtype.name,
        rows,
        seconds,
        statistics.median(seconds),
        statistics.median(compile_seconds) if compile_seconds else None,
        None,
        data_bytes,
        None,
        world_size=BACKENDS[name].world_size,
        startup_seconds=startup,
        startup_median=statistics.median(startup),
    )
