"""``gradcmp bench``: how fast each backend computes loss and gradient, and how close that is
to what the machine's memory allows.

For every size a dataset of random normal features is made (seeded: the same numbers every
time), with y = X·w + noise and the linear model at θ = (0.5, 0.25, …). Each backend runs in a
forked process of its own (its framework imported there, nothing left behind for the next),
one call first (for jax-jit: the compilation, reported apart) and then ``repeat`` timed
calls. Reported per backend × dtype × size: the median and spread of the call's time, the
compile time, the peak memory the calls added, and the fraction of the bandwidth limit: the
time a single read of the inputs takes at the read bandwidth measured at start (the device's
roofline, roofline.py: numpy summing a 256 MB array; ``--device cuda``: torch summing 1 GiB on
the GPU, and its float32 matmul TFLOP/s with TF32 and without), divided by the median. 100 %
would be a backend that reads its inputs once at full speed and does nothing else; real
gradients read them at least twice.

A distributed backend (``torch-ddp:4``, ``jax-sharded:2`` …) starts a world per call: it is
timed by worlds.py instead — ``repeat`` worlds per size, the engine's own time per
gradient, and each world's start-up apart.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from ..backends import BACKENDS
from ..backends.base import SkipBackend
from ..bench.measurement import Measurement, unmeasured
from ..bench.roofline import BANDWIDTH_BYTES, Roofline, read_bandwidth  # noqa: F401
from ..dtypes import DType
from ..errors import one_line
from ..judging.children import become_child, fork
from ..judging.memory import peak_since, resident_bytes_reset
from ..loading.data import from_arrays
from ..models import get_model
from ..params import Params
from ..problem import Problem

REFERENCE = "exact"  # -b exact: time the exact reference too


def make_problem(rows: int, features: int = 1, seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, features))
    w = np.linspace(1.0, 2.0, features)
    y = X @ w + 0.5 + rng.standard_normal(rows)
    model = get_model("linear")
    dataset = from_arrays(X, y, path=f"<random {rows}×{features}>")
    values = model.initial_params(dataset)
    values["theta0"] = np.asarray(0.5)
    values["theta1"] = np.full(values["theta1"].shape, 0.25)
    return Problem(model, dataset, Params.from_arrays(values))


def _release_free_memory() -> None:
    """glibc's malloc_trim(0): free heap memory back to the system (elsewhere: nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _time_backend(name: str, problem: Problem, dtype: DType, repeat: int):
    """(seconds per timed call, compile seconds, peak bytes added) for one backend × dtype."""
    if name == REFERENCE:
        from ..reference.compute import compute_reference

        def call():
            start = time.perf_counter()
            compute_reference(problem, [dtype])
            return time.perf_counter() - start, None
    else:
        backend = BACKENDS[name]

        def call():
            start = time.perf_counter()
            output = backend.compute(problem, dtype)
            seconds = time.perf_counter() - start
            if output.run_seconds is not None:
                return output.run_seconds, output.compile_seconds
            return seconds, None

    _, compile_seconds = call()  # the first call: imports settle, jit compiles
    # Memory the first call freed stays with the allocator, and the timed calls would reuse
    # it unseen: hand it back first, so their own temporaries count.
    _release_free_memory()
    base = resident_bytes_reset()
    seconds = [call()[0] for _ in range(repeat)]
    return seconds, compile_seconds, peak_since(base)


def _child(name, problems, dtypes, repeat, bandwidth, connection, parent) -> None:
    become_child(parent)
    setup_error = ""
    if name != REFERENCE:
        try:
            BACKENDS[name].setup()
        except Exception as exc:  # this backend's rows say why; the others still run
            setup_error = one_line(exc)
    for problem in problems:
        for dtype in dtypes:
            rows = problem.data.rows
            X, y = problem.inputs(dtype)
            data_bytes = X.nbytes + y.nbytes
            if setup_error:
                connection.send(
                    unmeasured(name, dtype, rows, data_bytes, "failed", f"import: {setup_error}")
                )
                continue
            try:
                if name != REFERENCE and dtype.name not in BACKENDS[name].dtypes:
                    raise SkipBackend(f"{name} does not compute in {dtype.name}")
                seconds, compile_seconds, peak = _time_backend(name, problem, dtype, repeat)
            except Exception as exc:  # this row's status; the others still run
                status = "skipped" if isinstance(exc, SkipBackend) else "failed"
                note = one_line(exc)
                if status == "skipped":  # the reason alone, as gradcmp run shows it
                    note = note.removeprefix(f"{type(exc).__name__}: ")
                connection.send(unmeasured(name, dtype, rows, data_bytes, status, note))
                continue
            median = statistics.median(seconds)
            fraction = data_bytes / bandwidth / median if median > 0 else None
            connection.send(
                Measurement(
                    name,
                    dtype.name,
                    rows,
                    seconds,
                    median,
                    compile_seconds,
                    peak,
                    data_bytes,
                    fraction,
                )
            )
    connection.close()


def run_bench(
    sizes: list[int],
    backends: list[str],
    dtypes: list[DType],
    repeat: int,
    features: int = 1,
    progress: Callable[[Measurement], None] = lambda m: None,
    device: str = "cpu",
) -> tuple[Roofline, list[Measurement]]:
    """(the roofline of ``device``, one Measurement per backend × dtype × size). Distributed
    backends (``torch-ddp:4``) run worlds of their own, measured last (worlds.py). On cuda
    the roofline is measured in a forked process: this one never initialises CUDA."""
    from ..bench import roofline as rooflines
    from ..bench.worlds import is_world, run_worlds

    worlds = [n for n in backends if n != REFERENCE and is_world(n)]
    roofline = rooflines.measure(device)
    bandwidth = roofline.bandwidth_bytes_per_second
    problems = [make_problem(n, features) for n in sizes]
    for problem in problems:  # made here once, shared with every child's pages
        for dtype in dtypes:
            problem.inputs(dtype)
    context = multiprocessing.get_context("fork")
    measurements: list[Measurement] = []
    for name in (n for n in backends if n not in worlds):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=_child,
            args=(name, problems, dtypes, repeat, bandwidth, sender, os.getpid()),
            daemon=True,
        )
        fork(process)
        sender.close()
        expected = len(problems) * len(dtypes)
        got = 0
        try:
            while got < expected:
                try:
                    measurement = receiver.recv()
                except EOFError:
                    break
                measurements.append(measurement)
                progress(measurement)
                got += 1
        finally:
            if process.is_alive() and got < expected:
                process.kill()
            process.join()
            receiver.close()
        if got < expected:  # the child died: say so for what it did not measure
            done = {(m.rows, m.dtype) for m in measurements if m.backend == name}
            for problem in problems:
                for dtype in dtypes:
                    if (problem.data.rows, dtype.name) not in done:
                        X, y = problem.inputs(dtype)
                        note = f"the benchmark process died (exit code {process.exitcode})"
                        died = unmeasured(
                            name, dtype, problem.data.rows, X.nbytes + y.nbytes, "failed", note
                        )
                        measurements.append(died)
                        progress(died)
    measurements += run_worlds(problems, worlds, dtypes, repeat, progress)
    return roofline, measurements


def to_dict(roofline: Roofline | float, measurements: list[Measurement], repeat: int) -> dict:
    """The JSON report; ``roofline`` a bare read bandwidth (bytes/s) for the cpu's."""
    from .. import environment
    from ..bench.roofline import cpu_name

    if not isinstance(roofline, Roofline):
        roofline = Roofline("cpu", cpu_name(), float(roofline))
    return {
        **roofline.to_dict(),
        "repeat": repeat,
        "environment": environment.describe(),
        "results": [
            {**asdict(m), "spread": list(m.spread) if m.spread else None} for m in measurements
        ],
    }


def plot(measurements: list[Measurement], bandwidth: float, path: str) -> None:
    """A log-log PNG: call time against rows, one line per backend × dtype, and the bandwidth
    limit of each dtype dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5.5))
    lines: dict[tuple[str, str], list[tuple[int, float]]] = {}
    limits: dict[str, list[tuple[int, float]]] = {}
    for m in measurements:
        if m.median is not None:
            lines.setdefault((m.backend, m.dtype), []).append((m.rows, m.median))
        limits.setdefault(m.dtype, []).append((m.rows, m.data_bytes / bandwidth))
    for (backend, dtype), points in lines.items():
        points.sort()
        style = "-" if dtype == "float32" else "--" if dtype == "float64" else ":"
        axes.plot(*zip(*points), style, marker="o", label=f"{backend} {dtype}")
    for dtype, points in limits.items():
        points = sorted(set(points))
        axes.plot(
            *zip(*points),
            color="black",
            linestyle=":" if dtype == "float32" else "-.",
            linewidth=2,
            label=f"bandwidth limit {dtype}",
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("rows")
    axes.set_ylabel("seconds per loss-and-gradient call (median)")
    axes.set_title(f"gradcmp bench (read bandwidth {bandwidth / 1e9:.1f} GB/s)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    # Written beside and renamed: an interrupted run leaves no half-written file.
    import tempfile

    from ..api import default_file_mode
    from ..errors import UsageError

    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=".gradcmp-plot.", suffix=".png", dir=directory)
    os.close(handle)
    try:
        figure.savefig(temporary, dpi=120, format="png")
        os.chmod(temporary, default_file_mode())
        os.replace(temporary, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        plt.close(figure)
        if os.path.exists(temporary):
            os.unlink(temporary)
