"""``gradcmp bench`` with a distributed backend: one world per size and repeat, the time per
gradient and the world's start-up reported apart, in JSON and in the table.

One small world (torch-ddp:2, 50 rows, one repeat, float64): well under 30 s on two cores.
Nothing here checks a speed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from rich.console import Console

from gradcmp.bench import Measurement
from gradcmp.bench.report import render


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", "bench", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "GRADCMP_CACHE_DIR": ""},
    )


def test_a_world_reports_its_time_per_gradient_and_its_start_up_apart():
    pytest.importorskip("torch")
    done = bench(
        "--rows", "50", "-b", "torch-ddp:2", "--dtype", "float64", "--repeat", "1",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["backend"], result["dtype"], result["rows"]) == ("torch-ddp:2", "float64", 50)
    assert result["status"] == "ok" and result["world_size"] == 2
    # Per gradient: the engine's own forward+backward — far below the world's start-up,
    # which imports torch in every rank.
    assert len(result["seconds"]) == 1 and 0 < result["median"] == result["seconds"][0]
    assert len(result["startup_seconds"]) == 1 and result["startup_median"] > 0
    assert result["startup_median"] > 10 * result["median"]
    assert result["peak_bytes"] is None and result["bandwidth_fraction"] is None

    # The table shows both, in columns of their own.
    buffer = io.StringIO()
    fields = set(Measurement.__dataclass_fields__)
    measurement = Measurement(**{k: v for k, v in result.items() if k in fields})
    render(1e10, [measurement], 1, [], Console(file=buffer, width=200, color_system=None))
    table = buffer.getvalue()
    assert "per gradient" in table and "start-up" in table and "torch-ddp:2" in table
    assert "read bandwidth" not in table  # no single-process backend was timed


def test_a_dtype_the_engine_cannot_reduce_is_skipped_without_a_world():
    pytest.importorskip("torch")
    done = bench("--rows", "10", "-b", "torch-ddp:2", "--dtype", "float16", "--format", "json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["status"] == "skipped" and "float16" in result["note"]
    assert result["median"] is None and result["startup_seconds"] == []


class FakeWorld:
    """A distributed backend that answers at once: each world 'takes' ``wall`` seconds (the
    clock is faked), of which each dtype's gradient 0.1 s and its compile 0.2 s."""

    dtypes = ("float64", "float32")
    requires = ()

    def __init__(self, name, world_size, answer="ok"):
        self.name, self.world_size, self.answer = name, world_size, answer
        self.worlds = 0

    def compute_all(self, problem, dtypes, timeout):
        from gradcmp.backends.base import Output, SkipBackend
        from gradcmp.backends.distributed import WorldFailed

        self.worlds += 1
        if self.answer == "skip":
            return {d.name: SkipBackend("the loss cannot be sharded") for d in dtypes}
        if self.answer == "fail":
            return {d.name: WorldFailed("rank 1 failed: boom") for d in dtypes}
        return {
            d.name: Output(loss=0.0, grads={}, run_seconds=0.1, compile_seconds=0.2) for d in dtypes
        }


def test_start_up_is_the_world_less_its_gradients_and_a_failed_world_is_not_retried(
    monkeypatch,
):
    from gradcmp.backends import BACKENDS
    from gradcmp.bench import make_problem
    from gradcmp.bench import worlds as bench_worlds
    from gradcmp.dtypes import parse_dtypes

    worlds = {
        "fake:2": FakeWorld("fake:2", 2),
        "fake-skip:2": FakeWorld("fake-skip:2", 2, "skip"),
        "fake-fail:2": FakeWorld("fake-fail:2", 2, "fail"),
    }
    for name, world in worlds.items():
        monkeypatch.setitem(BACKENDS, name, world)
    clock = iter(range(0, 1000, 5))  # every world: 5 s from start to end
    monkeypatch.setattr(bench_worlds.time, "perf_counter", lambda: float(next(clock)))
    measurements = bench_worlds.run_worlds(
        [make_problem(10)], list(worlds), parse_dtypes("float32,float64,float16"), repeat=3
    )
    by_key = {(m.backend, m.dtype): m for m in measurements}
    ok = by_key["fake:2", "float64"]
    assert ok.world_size == 2 and ok.seconds == [0.1] * 3 and ok.compile_seconds == 0.2
    # Two dtypes in one world: 5 s less 2 × (0.1 + 0.2).
    assert ok.startup_seconds == pytest.approx([4.4] * 3) and ok.startup_median == 4.4
    assert by_key["fake:2", "float16"].status == "skipped"
    assert by_key["fake-skip:2", "float32"].status == "skipped"
    failed = by_key["fake-fail:2", "float32"]
    assert failed.status == "failed" and failed.note == "rank 1 failed: boom"
    assert failed.median is None and failed.startup_seconds == []
    assert [w.worlds for w in worlds.values()] == [3, 1, 1]
