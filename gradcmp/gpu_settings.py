"""The framework settings that decide how a GPU rounds float32 products, read as they are.

Shared by the backends that record them with each result (backends/devices.py) and by the
report's environment (environment.py). Imports nothing beyond the standard library, and reads a
framework only where this process has imported it already: the pytest plugin's header and
``gradcmp --help`` stay free of numpy and the frameworks.
"""

from __future__ import annotations

import functools
import os
import sys
from importlib import metadata

# framework → the name of the GPU its backends computed on in this process (the fingerprint).
USED: dict[str, str] = {}


def read(get):
    """A framework setting as it reads now, or why it cannot be read (torch refuses to read a
    legacy TF32 flag once the new ``fp32_precision`` API has set it)."""
    try:
        value = get()
    except (AttributeError, RuntimeError) as exc:
        return f"unreadable ({type(exc).__name__})"
    return value if isinstance(value, bool | int | float) or value is None else str(value)


def precision_settings(name: str | None) -> dict:
    """What decides how this process's framework computes float32 products on a GPU, as the
    framework reports it now (its defaults, or what the loss file or --matmul-precision set);
    ``NVIDIA_TF32_OVERRIDE=0`` turns TF32 off in cuBLAS and cuDNN whatever they say."""
    override = {"nvidia_tf32_override": os.environ.get("NVIDIA_TF32_OVERRIDE")}
    if name == "torch" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        return {
            "torch_allow_tf32_matmul": read(lambda: matmul.allow_tf32),
            "torch_allow_tf32_cudnn": read(lambda: cudnn.allow_tf32),
            "torch_fp32_precision_matmul": read(lambda: matmul.fp32_precision),
            "torch_float32_matmul_precision": read(torch.get_float32_matmul_precision),
            **override,
        }
    if name == "jax" and "jax" in sys.modules:
        config = sys.modules["jax"].config
        return {
            "jax_default_matmul_precision": read(lambda: config.jax_default_matmul_precision),
            **override,
        }
    return {}


@functools.cache
def jax_cuda_plugin() -> str | None:
    """The installed JAX CUDA plugin's distribution name, if any (jax-cuda13-plugin …)."""
    for distribution in metadata.distributions():
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("jax-cuda") and name.endswith("-plugin"):
            return name
    return None
