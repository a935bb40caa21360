"""Where a framework backend computes: ``cpu`` (the default) or ``cuda``.

``torch-grad@cuda`` is torch-grad with its inputs, parameters and computation on the first
CUDA device; ``--device cuda`` asks that of every backend that can (the torch and JAX ones;
native, numpy and the finite-difference backends compute on the CPU whatever is asked). The
reference and the bound do not change with the device: the same float32 inputs, the same
rule, whoever rounds.

The device reaches the shared input helpers (``_torch.py``, ``_jax.py``) through a context
variable set around the backend's call, so a backend file need not know about devices. Each
result records the settings that change a GPU's float32 products (TF32, JAX's default
matmul precision): the verdict note names them when a result departs by what they allow
(judging/precision.py).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib.util
import os
import sys
from collections.abc import Iterator
from importlib import metadata

from ..dtypes import DType
from ..errors import BackendError
from ..problem import Problem

DEVICES = ("cpu", "cuda")
# --matmul-precision: the frameworks' own setting, or full float32 products.
MATMUL_PRECISIONS = ("default", "highest")
# The frameworks whose backends can move to a GPU.
DEVICE_FRAMEWORKS = ("torch", "jax")

_current = contextvars.ContextVar("gradcmp_device", default="cpu")
# framework → the name of the GPU its backends computed on in this process (the fingerprint).
USED: dict[str, str] = {}


def current_device() -> str:
    """The device the running backend call computes on."""
    return _current.get()


@contextlib.contextmanager
def on_device(device: str) -> Iterator[None]:
    token = _current.set(device)
    try:
        yield
    finally:
        _current.reset(token)


def split_device(name: str) -> tuple[str, str | None]:
    """``torch-grad@cuda`` → (``torch-grad``, ``cuda``); a name without ``@`` → (name, None)."""
    base, at, device = name.partition("@")
    return (base, device) if at else (name, None)


def framework(backend) -> str | None:
    return next((f for f in DEVICE_FRAMEWORKS if f in backend.requires), None)


def can_move(backend) -> bool:
    """Whether ``backend`` computes in a framework that runs on a GPU (a distributed world
    keeps its own devices: gloo on CPU)."""
    return framework(backend) is not None and not getattr(backend, "world_size", None)


class OnDevice:
    """A framework backend computing on ``device``: the same code, its arrays placed there."""

    def __init__(self, base, device: str):
        self.base, self.device = base, device
        self.name = f"{base.name}@{device}"
        self.description = f"{base.description}; on {device}"
        self.requires = base.requires
        self.dtypes = base.dtypes

    def setup(self) -> None:
        self.base.setup()

    def compute(self, problem: Problem, dtype: DType):
        name = framework(self.base)
        with on_device(self.device), matmul_precision(name, problem.matmul_precision):
            output = self.base.compute(problem, dtype)
            settings = precision_settings(name)
        if self.device == "cuda":
            USED[name] = _device_name(name)
        return dataclasses.replace(output, device=self.device, settings=settings)


def _device_name(name: str) -> str:
    """The GPU's name as its framework reports it (NVIDIA H200 …)."""
    if name == "torch":
        import torch

        return torch.cuda.get_device_name(torch_device())
    return str(jax_device().device_kind)


@contextlib.contextmanager
def matmul_precision(name: str | None, precision: str) -> Iterator[None]:
    """``highest``: full float32 products for the call — torch without TF32 in cuBLAS and
    cuDNN, JAX at jax_default_matmul_precision "highest" — and the process's settings as
    they were afterwards; ``default``: as they are."""
    if precision == "default" or name is None:
        yield
        return
    if name == "jax":
        import jax

        with jax.default_matmul_precision("highest"):
            yield
        return
    switches = _torch_tf32_switches()
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in switches]
    for owner, attribute, off in switches:
        setattr(owner, attribute, off)
    try:
        yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)


def _torch_tf32_switches() -> list:
    """(owner, attribute, value that turns TF32 off) for cuBLAS and cuDNN convolutions: torch
    ≥ 2.9's ``fp32_precision = "ieee"`` where it has it (mixing it with the legacy flags is
    an error there), else the legacy ``allow_tf32 = False``."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv = getattr(cudnn, "conv", None)
    if conv is not None and _readable(lambda: matmul.fp32_precision):
        return [(matmul, "fp32_precision", "ieee"), (conv, "fp32_precision", "ieee")]
    return [(matmul, "allow_tf32", False), (cudnn, "allow_tf32", False)]


def _readable(read) -> bool:
    try:
        read()
    except (AttributeError, RuntimeError):
        return False
    return True


def _read(read):
    """A framework setting as it reads now, or why it cannot be read (torch refuses to read a
    legacy TF32 flag once the new API set it)."""
    try:
        value = read()
    except (AttributeError, RuntimeError) as exc:
        return f"unreadable ({type(exc).__name__})"
    return value if isinstance(value, bool | int | float) or value is None else str(value)


def precision_settings(name: str | None) -> dict:
    """What decides how this process's framework computes float32 products on a GPU, as the
    framework reports it now (its defaults, or what the loss file or --matmul-precision set)."""
    if name == "torch" and "torch" in sys.modules:
        torch = sys.modules["torch"]
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        return {
            "torch_allow_tf32_matmul": _read(lambda: matmul.allow_tf32),
            "torch_allow_tf32_cudnn": _read(lambda: cudnn.allow_tf32),
            "torch_fp32_precision_matmul": _read(lambda: matmul.fp32_precision),
            "torch_float32_matmul_precision": _read(torch.get_float32_matmul_precision),
        }
    if name == "jax" and "jax" in sys.modules:
        config = sys.modules["jax"].config
        return {"jax_default_matmul_precision": _read(lambda: config.jax_default_matmul_precision)}
    return {}


def torch_device():
    """The torch device to compute on; a CUDA request where torch sees no GPU fails the call."""
    import torch

    device = current_device()
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is "
            "False): run on a machine with an NVIDIA GPU, or use --device cpu"
        )
    return torch.device(device)


def jax_device():
    """The JAX device to compute on: None on the CPU (JAX's own default placement, as before:
    a multi-process world keeps each process's arrays on its own devices), this process's
    first GPU for ``@cuda``; a CUDA request where JAX has no GPU fails the call."""
    import jax

    if current_device() != "cuda":
        return None
    try:
        return jax.local_devices(backend="cuda")[0]
    except RuntimeError:
        raise RuntimeError(
            f"jax {jax.__version__} has no CUDA device (jax.local_devices(backend='cuda') "
            "found none): install jax[cuda12] on a machine with an NVIDIA GPU, or use "
            "--device cpu"
        ) from None


def cuda_missing(frameworks: set[str]) -> str | None:
    """Why no backend of ``frameworks`` can compute on CUDA here, found without importing a
    framework (a CPU-only torch build, no JAX CUDA plugin); None where it may (whether a
    GPU is there is then found by the backend's call, which fails if not)."""
    reasons = []
    if "torch" in frameworks:
        cuda = _torch_cuda_version()
        if cuda is None:
            reasons.append(f"torch {_version('torch') or '(not installed)'} is a CPU-only build")
    if "jax" in frameworks and not _jax_cuda_plugin():
        reasons.append(f"jax {_version('jax') or '(not installed)'} has no CUDA plugin")
    if not reasons:
        return None
    return " and ".join(reasons)


def check_cuda(names: list[str], backends) -> None:
    """One line and exit 3 (docs/design.md, exit codes) for a CUDA request this machine
    cannot serve."""
    wanted = {framework(backends[n]) for n in names if n.endswith("@cuda")}
    why = cuda_missing({f for f in wanted if f})
    if why is not None:
        cuda = [n for n in names if n.endswith("@cuda")]
        raise BackendError(
            f"{', '.join(cuda)}: no CUDA here: {why}",
            hint="run on a machine with an NVIDIA GPU and CUDA builds of torch/jax, "
            "or use --device cpu",
        )


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _torch_cuda_version() -> str | None:
    """torch.version.cuda, read from torch/version.py without importing torch (None for a
    CPU-only build or no torch)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].version.cuda
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "version.py")
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("cuda"):
                    value = line.split("=", 1)[1].strip().strip("'\"")
                    return None if value in ("None", "") else value
    except OSError:
        return None
    return None


def _jax_cuda_plugin() -> str | None:
    """The installed JAX CUDA plugin's distribution name, if any (jax-cuda12-plugin …)."""
    for distribution in metadata.distributions():
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name.startswith("jax-cuda") and name.endswith("-plugin"):
            return name
    return None
