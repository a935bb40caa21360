"""Facts about where the numbers came from, for the report. Imports no framework."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, without importing it (None: not installed)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def describe() -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "gradcmp": installed_version("gradcmp"),
        "numpy": installed_version("numpy"),
        "torch": installed_version("torch"),
        "jax": installed_version("jax"),
        "jaxlib": installed_version("jaxlib"),
        "device": "cpu",
        **dict.fromkeys(GPU_FIELDS),
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "nvidia_tf32_override": os.environ.get("NVIDIA_TF32_OVERRIDE"),
    }
    env.update(framework_state())
    return env


# What changes a GPU's numbers, recorded for every run (None: that framework did not run, or
# ran on no GPU): the device, CUDA and cuDNN, TF32 and matmul precision, determinism.
GPU_FIELDS = (
    "cuda_device",
    "cuda_version",
    "cudnn_version",
    "torch_allow_tf32_matmul",
    "torch_allow_tf32_cudnn",
    "torch_fp32_precision_matmul",
    "torch_float32_matmul_precision",
    "torch_deterministic_algorithms",
    "torch_cudnn_deterministic",
    "torch_cudnn_benchmark",
    "jax_default_matmul_precision",
    "jax_cuda_plugin",
    "nvidia_tf32_override",
)


def framework_state() -> dict:
    """torch's threads and default dtype, JAX's global x64 setting: only for a framework this
    process imported (a worker process reports its own)."""
    from . import gpu_settings

    env: dict = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch_threads"] = torch.get_num_threads()
        env["torch_default_dtype"] = str(torch.get_default_dtype()).replace("torch.", "")
        env.update(gpu_settings.precision_settings("torch"))
        env["cuda_version"] = torch.version.cuda
        env["cudnn_version"] = gpu_settings.read(torch.backends.cudnn.version)
        env["torch_deterministic_algorithms"] = torch.are_deterministic_algorithms_enabled()
        env["torch_cudnn_deterministic"] = bool(torch.backends.cudnn.deterministic)
        env["torch_cudnn_benchmark"] = bool(torch.backends.cudnn.benchmark)
    if "jax" in sys.modules:
        env["jax_x64_default"] = bool(sys.modules["jax"].config.jax_enable_x64)
        env["jax_x64_float64_backends"] = True  # float64 backends run under a scoped enable_x64
        env.update(gpu_settings.precision_settings("jax"))
        env["jax_cuda_plugin"] = gpu_settings.jax_cuda_plugin()
    if gpu_settings.USED:  # the GPUs this process's backends computed on (devices.py)
        env["device"] = "cuda"
        env["cuda_device"] = ", ".join(sorted(set(gpu_settings.USED.values())))
    return env
