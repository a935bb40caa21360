"""Facts about where the numbers came from, for the report. Imports no framework."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu(),
        "cpu_count": os.cpu_count(),
        "gradcmp": _version("gradcmp"),
        "numpy": _version("numpy"),
        "torch": _version("torch"),
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "device": "cpu",
    }
    env.update(framework_state())
    return env


def framework_state() -> dict:
    """torch's threads and default dtype, JAX's global x64 setting: only for a framework this
    process imported (a worker process reports its own)."""
    env: dict = {}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        env["torch_threads"] = torch.get_num_threads()
        env["torch_default_dtype"] = str(torch.get_default_dtype()).replace("torch.", "")
    if "jax" in sys.modules:
        env["jax_x64_default"] = bool(sys.modules["jax"].config.jax_enable_x64)
        env["jax_x64_float64_backends"] = True  # float64 backends run under a scoped enable_x64
    return env
