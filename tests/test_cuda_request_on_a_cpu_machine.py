"""Asking for a GPU where there is none: one line and exit 3 (a requested backend cannot run),
before any work; a device a backend cannot use is a usage error (exit 2); and every report's
environment carries the fields that decide GPU numerics, whatever the device."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gradcmp.backends import BACKENDS, parse_backends
from gradcmp.backends.devices import cuda_missing
from gradcmp.environment import GPU_FIELDS
from gradcmp.errors import UsageError

pytestmark = pytest.mark.skipif(
    cuda_missing({"torch", "jax"}) is None, reason="this machine has CUDA builds"
)


def gradcmp(*args):
    return subprocess.run(
        [sys.executable, "-m", "gradcmp", "run", *args], capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "args",
    [["--device", "cuda"], ["-b", "torch-grad@cuda,native"], ["-b", "jax-jit@cuda"]],
)
def test_a_cuda_request_fails_with_one_line_and_exit_3(args):
    done = gradcmp(*args)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradcmp: error: "), done.stderr
    assert "no CUDA here" in lines[0] and "--device cpu" in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("native@cuda", "native computes on the CPU only"),
        ("torch-grad@tpu", "unknown device 'tpu'"),
        ("torch-ddp:2@cuda", "computes on the CPU only"),
    ],
)
def test_a_device_a_backend_cannot_use_is_a_usage_error(text, fragment):
    with pytest.raises(UsageError, match=fragment):
        parse_backends(text)


def test_device_names_map_onto_backends():
    assert parse_backends("native,torch-grad,jax-grad", "cuda") == [
        "native",
        "torch-grad@cuda",
        "jax-grad@cuda",
    ]
    assert parse_backends("torch-grad@cpu") == ["torch-grad"]  # @cpu is the plain backend
    assert BACKENDS["jax-jit@cuda"].base is BACKENDS["jax-jit"]


def test_the_report_records_what_decides_gpu_numerics(tmp_path):
    done = gradcmp("-b", "torch-grad,jax-grad", "--dtype", "float32", "--format", "json")
    assert done.returncode == 0, done.stderr
    environment = json.loads(done.stdout)["environment"]
    assert set(GPU_FIELDS) <= set(environment)
    assert environment["device"] == "cpu" and environment["cuda_device"] is None
    # The frameworks ran (in workers): their settings are recorded, not left empty.
    assert environment["torch_allow_tf32_matmul"] is False
    assert environment["torch_float32_matmul_precision"] == "highest"
    assert "jax_default_matmul_precision" in environment
    assert environment["matmul_precision"] == "default"


def test_a_backend_placed_on_a_device_computes_through_the_same_code(monkeypatch):
    """The wrapper a GPU run uses, placed on the CPU: the same numbers and verdict as the
    plain backend, the device and settings recorded, --matmul-precision highest applied only
    for the call (the process's settings as they were afterwards)."""
    import gradcmp
    from gradcmp.backends.devices import OnDevice, precision_settings

    torch = pytest.importorskip("torch")
    for base in ("torch-grad", "jax-grad", "jax-jit"):
        placed = OnDevice(BACKENDS[base], "cpu")
        placed.name = f"{base}-placed"
        monkeypatch.setitem(BACKENDS, placed.name, placed)
    names = ["torch-grad", "torch-grad-placed", "jax-grad-placed", "jax-jit-placed"]
    before = precision_settings("torch")
    for precision in ("default", "highest", "tf32"):
        report = gradcmp.compare(
            "gradcmp/data/xy.csv", backends=names, dtypes="float32", matmul_precision=precision
        )
        plain, *placed = report.results
        assert report.verdict == "agree"
        assert all(r.device == "cpu" and r.verdict == "agree" for r in report.results)
        assert placed[0].grads == plain.grads  # the same computation, the same numbers
        assert set(placed[0].settings) >= {"torch_allow_tf32_matmul"}
        jax_setting = placed[1].settings["jax_default_matmul_precision"]
        expected = {"default": None, "highest": "highest", "tf32": "tensorfloat32"}[precision]
        assert jax_setting == expected
        expected = {"default": "none", "highest": "ieee", "tf32": "tf32"}[precision]
        assert placed[0].settings["torch_fp32_precision_matmul"] == expected
    assert precision_settings("torch") == before  # restored after each call
    assert torch.backends.cuda.matmul.fp32_precision == "none"
