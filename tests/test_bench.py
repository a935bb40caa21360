"""``gradcmp bench``: runs, measures what it says, and refuses bad options in one line.

Run as a subprocess: bench forks one process per backend, and the test process has
frameworks imported already. Nothing here checks a speed (benchmarks are not timed tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gradcmp.bench import make_problem, read_bandwidth


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "GRADCMP_CACHE_DIR": ""},
    )


def test_bench_json_has_one_measurement_per_backend_dtype_and_size():
    done = bench(
        "--rows", "10,1e3", "-b", "native,numpy,exact", "--repeat", "3", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bandwidth_bytes_per_second"] > 1e8
    results = report["results"]
    keys = {(r["backend"], r["dtype"], r["rows"]) for r in results}
    assert keys == {
        (b, d, n)
        for b in ("native", "numpy", "exact")
        for d in ("float32", "float64")
        for n in (10, 1000)
    }
    for r in results:
        assert r["status"] == "ok"
        assert len(r["seconds"]) == 3 and all(s > 0 for s in r["seconds"])
        low, high = r["spread"]
        assert low <= r["median"] <= high
        itemsize = 4 if r["dtype"] == "float32" else 8
        assert r["data_bytes"] == r["rows"] * 2 * itemsize  # one feature and the target
        assert 0 < r["bandwidth_fraction"] < 1


def test_bench_reports_jit_compile_apart_and_writes_a_plot(tmp_path):
    pytest.importorskip("jax")
    pytest.importorskip("matplotlib")
    png = tmp_path / "bench.png"
    done = bench(
        "--rows", "100", "-b", "jax-jit", "--dtype", "float32", "--repeat", "2", "--plot", str(png)
    )
    assert done.returncode == 0, done.stderr
    assert "jax-jit" in done.stdout and "compile" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "ten"], "--rows: 'ten' is not a number"),
        (["--rows", "1.5"], "--rows: 1.5 is not a row count from 1 to 1e10"),
        (["--rows", "0"], "--rows: 0 is not a row count from 1 to 1e10"),
        (["-b", "nonesuch"], "unknown backend 'nonesuch'"),
        (["--dtype", "float8"], "float8"),
        (["--rows", "10", "-b", "native", "--plot", "/nonexistent/b.png"], "cannot write the plot"),
    ],
)
def test_bad_bench_options_are_one_line_exit_2(args, message):
    done = bench(*args)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("gradcmp: error: ")
    assert message in done.stderr


def test_bench_problem_is_seeded_and_bandwidth_is_positive():
    a, b = make_problem(50, features=2), make_problem(50, features=2)
    assert (a.data.X == b.data.X).all() and (a.data.y == b.data.y).all()
    assert a.data.X.shape == (50, 2)
    assert read_bandwidth(repeat=1) > 0
