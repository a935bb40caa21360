"""``gradcmp bench --device``: cuda refused in one line (exit 3) where torch/JAX have no CUDA
build; cpu's JSON names the device and its roofline; the roofline's arithmetic, its TF32
switch and its forked measuring process, checked without a GPU.

The CLI runs as a subprocess (bench forks; see test_bench.py). Nothing here checks a speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from gradcmp.backends.devices import cuda_missing
from gradcmp.bench import roofline
from gradcmp.bench.measurement import Measurement
from gradcmp.bench.report import render
from gradcmp.errors import BackendError

ENV = {**os.environ, "GRADCMP_CACHE_DIR": ""}
NO_CUDA = cuda_missing({"torch"}) is not None


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", "bench", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA build of torch")
@pytest.mark.parametrize("backends", [[], ["-b", "native,torch-grad"], ["-b", "torch-grad@cuda"]])
def test_cuda_without_a_cuda_build_is_one_line_and_exit_3(backends):
    done = bench("--device", "cuda", "--rows", "10", "--repeat", "1", *backends)
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("gradcmp: error:")
    assert "CUDA" in lines[0] and "--device cpu" in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_an_unknown_device_is_a_usage_error():
    done = bench("--device", "tpu", "--rows", "10", "--repeat", "1")
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "--device" in done.stderr


def test_cpu_json_names_the_device_and_its_roofline():
    done = bench(
        "--device", "cpu", "-b", "native", "--rows", "10", "--repeat", "1",
        "--dtype", "float32", "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["device"] == "cpu"
    assert isinstance(report["device_name"], str) and report["device_name"]
    assert report["bandwidth_bytes_per_second"] > 0
    assert "matmul_tflops_float32" not in report and "matmul_tflops_tf32" not in report
    [result] = report["results"]
    assert result["backend"] == "native" and result["status"] == "ok"


def test_the_default_device_is_cpu_and_the_table_names_it():
    done = bench("-b", "native", "--rows", "10", "--repeat", "1", "--dtype", "float32")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cpu (") and "read bandwidth" in done.stdout


def test_tflops_and_bandwidth_arithmetic():
    assert roofline.matmul_tflops(8192, 1.0) == pytest.approx(2 * 8192**3 / 1e12)
    assert roofline.matmul_tflops(1000, 2e-3) == pytest.approx(1.0)  # 2e9 flop in 2 ms
    assert roofline.bytes_per_second(2**30, 0.25) == 4 * 2**30


def test_best_of_synchronizes_around_every_call_and_keeps_the_shortest():
    events = []
    clock = iter([0.0, 3.0, 10.0, 11.0, 20.0, 22.0])
    real = roofline.time.perf_counter
    roofline.time.perf_counter = lambda: next(clock)
    try:
        best = roofline.best_of(3, lambda: events.append("call"), lambda: events.append("sync"))
    finally:
        roofline.time.perf_counter = real
    assert best == 1.0
    assert events == ["sync", "call", "sync"] * 3


@pytest.mark.parametrize(
    ("new_api", "attribute", "on", "off", "before"),
    [(True, "fp32_precision", "tf32", "ieee", "none"), (False, "allow_tf32", True, False, False)],
)
def test_tf32_switch_sets_and_restores(monkeypatch, new_api, attribute, on, off, before):
    """The roofline's TF32 on/off is --matmul-precision's switch (devices.py): torch ≥ 2.9's
    fp32_precision where it reads, else the legacy flag; restored after, an error or not."""
    torch = pytest.importorskip("torch")
    from gradcmp.backends import devices

    if not new_api:  # a torch before 2.9: only the legacy flags (a stand-in, not the real one)

        class Flags:
            allow_tf32 = False

        torch = SimpleNamespace(backends=SimpleNamespace(cuda=SimpleNamespace(matmul=Flags())))
        torch.backends.cudnn = Flags()
        monkeypatch.setitem(sys.modules, "torch", torch)
    matmul = torch.backends.cuda.matmul
    for allowed, value in ((True, on), (False, off)):
        with devices.matmul_precision("torch", "tf32" if allowed else "highest"):
            assert getattr(matmul, attribute) == value
        assert getattr(matmul, attribute) == before
    with pytest.raises(ZeroDivisionError), devices.matmul_precision("torch", "highest"):
        raise ZeroDivisionError
    assert getattr(matmul, attribute) == before


# Forked from the test process: where an earlier test imported JAX here, JAX warns at the fork
# (its threads); the child never touches JAX.
FORK_WARNING = "ignore:os.fork:RuntimeWarning"


@pytest.mark.filterwarnings(FORK_WARNING)
def test_cuda_roofline_comes_from_a_forked_process(monkeypatch):
    parent = os.getpid()
    figures = {"device_name": "NVIDIA H200", "bandwidth": 4.0e12, "float32": 50.0, "tf32": 400.0}

    def measured():
        assert os.getpid() != parent  # never in the main process
        return figures

    monkeypatch.setattr(roofline, "measure_cuda", measured)
    found = roofline.measure("cuda")
    assert found == roofline.Roofline("cuda", "NVIDIA H200", 4.0e12, 50.0, 400.0)
    assert found.to_dict() == {
        "device": "cuda",
        "device_name": "NVIDIA H200",
        "bandwidth_bytes_per_second": 4.0e12,
        "matmul_tflops_float32": 50.0,
        "matmul_tflops_tf32": 400.0,
    }
    assert "4000.0 GB/s" in found.describe() and "400.0 TFLOP/s with TF32" in found.describe()


@pytest.mark.filterwarnings(FORK_WARNING)
def test_a_failed_cuda_roofline_is_a_backend_error(monkeypatch):
    def failing():
        raise RuntimeError("sees no CUDA device\nsecond line")

    monkeypatch.setattr(roofline, "measure_cuda", failing)
    with pytest.raises(BackendError) as caught:
        roofline.cuda_roofline()
    assert caught.value.exit_code == 3
    assert "RuntimeError: sees no CUDA device" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_table_shows_the_cuda_roofline():
    from io import StringIO

    from rich.console import Console

    found = roofline.Roofline("cuda", "NVIDIA H200", 4.0e12, 50.0, 400.0)
    m = Measurement("torch-grad@cuda", "float32", 10, [1e-3], 1e-3, None, None, 80, 2e-11)
    buffer = StringIO()
    render(found, [m], 1, [], Console(file=buffer, width=300, color_system=None))
    table = buffer.getvalue()
    assert table.startswith("cuda (NVIDIA H200): read bandwidth 4000.0 GB/s")
    assert "50.0 TFLOP/s without TF32" in table and "torch-grad@cuda" in table


def test_cuda_with_only_cpu_backends_is_a_usage_error():
    done = bench("--device", "cuda", "--rows", "10", "--repeat", "1", "-b", "native")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("gradcmp: error: none of the backends named computes on cuda")
