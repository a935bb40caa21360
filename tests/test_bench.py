"""``gradcmp bench``: runs, measures what it says (peak memory included), reports a backend
that fails to import as a row with the reason, and refuses bad options (more rows than memory
holds too) in one line.

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

ENV = {**os.environ, "GRADCMP_CACHE_DIR": ""}


def bench(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env or ENV,
    )


def fake_torch(tmp_path, body: str) -> dict:
    """An environment whose ``torch`` is a package that fails to import with ``body``."""
    package = tmp_path / "fake" / "torch"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(body + "\n")
    return {**ENV, "PYTHONPATH": str(tmp_path / "fake")}


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


def test_bench_a_backend_whose_import_fails_is_a_row_with_the_reason(tmp_path):
    """``bench``'s child calls ``BACKENDS[name].setup()`` outside its try: a framework that
    fails to import kills the child with a traceback on stderr, and the row only says "the
    benchmark process died (exit code 1)" — the reason (here a missing shared library) is
    lost, where ``gradcmp run`` reports "import: ImportError: …"."""
    env = fake_torch(tmp_path, 'raise ImportError("libtorch_cpu.so: cannot open shared object")')
    done = bench(
        "--rows", "10", "-b", "native,torch-grad", "--dtype", "float64", "--repeat", "1",
        "--format", "json", env=env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    (row,) = [r for r in json.loads(done.stdout)["results"] if r["backend"] == "torch-grad"]
    assert row["status"] == "failed"
    assert "libtorch_cpu.so" in row["note"], row["note"]
    assert "Traceback" not in done.stderr, done.stderr


# The limit is set inside the child (not by preexec_fn: forking the test process runs the
# at-fork hooks of what it imported, and JAX's warns).
LIMITED_BENCH = """
import resource, sys
limit = 8 * 2**30  # a machine with 8 GB: the same answer on any machine, at once
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from gradcmp.cli import main
sys.argv = ["gradcmp", "bench", *sys.argv[1:]]
main()
"""


def test_bench_rows_beyond_memory_are_not_an_internal_error():
    """``--rows`` accepts up to 1e10, but 1e10 rows are 160 GB of float64 data: the
    allocation's MemoryError escapes as exit 70, "internal error: MemoryError … (this is a
    bug in gradcmp: please report it …)". Too many rows for this machine is a usage problem
    to say in one line (or a range that --rows refuses), not a gradcmp bug."""
    done = subprocess.run(
        [sys.executable, "-c", LIMITED_BENCH, "--rows", "1e10", "-b", "native", "--dtype",
         "float64", "--repeat", "1"],
        capture_output=True, text=True, env=ENV, timeout=120,
    )  # fmt: skip
    assert "bug in gradcmp" not in done.stderr, done.stderr
    assert done.returncode != 70
    assert done.stderr.startswith("gradcmp: error: ") and done.stderr.count("\n") == 1


def test_bench_peak_memory_counts_the_calls_own_temporaries():
    """numpy's linear gradient on 10⁶ float64 rows allocates the residual vector (8 MB) and
    more on every call, yet ``peak_bytes`` is 0 (also at 10⁵ and 3·10⁶ rows; torch-grad's
    varies 0–48 MB from run to run, float64 below float32). The baseline RSS is read after
    the untimed call, whose freed temporaries glibc keeps in the heap; the timed calls reuse
    them and RSS never rises. "peak added" then measures the allocator, not the backend
    (e.g. ``malloc_trim(0)`` before the baseline would make the reuse visible)."""
    done = bench(
        "--rows", "1e6", "-b", "numpy", "--dtype", "float64", "--repeat", "2",
        "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["results"]
    if row["peak_bytes"] is None:
        pytest.skip("peak memory is not measurable here (/proc/self/clear_refs)")
    assert row["peak_bytes"] >= 4 * 10**6, row  # at least half of one 8 MB residual vector
