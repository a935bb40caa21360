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

from ..dtypes import DType
from ..environment import installed_version
from ..errors import BackendError
from ..gpu_settings import USED, jax_cuda_plugin, precision_settings
from ..problem import Problem

DEVICES = ("cpu", "cuda")
# --matmul-precision: the frameworks' own setting, full float32 products, or TF32 allowed.
MATMUL_PRECISIONS = ("default", "highest", "tf32")
# The frameworks whose backends can move to a GPU.
DEVICE_FRAMEWORKS = ("torch", "jax")

_current = contextvars.ContextVar("gradcmp_device", default="cpu")


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
    """For the call, then the process's settings as they were: ``highest``, full float32
    products (torch without TF32 in cuBLAS and cuDNN, JAX at "highest"); ``tf32``, TF32
    allowed in both (torch's TF32 flags on, JAX at "tensorfloat32": what some training code
    sets); ``default``, the settings as they are."""
    if precision == "default" or name is None:
        yield
        return
    allow = precision == "tf32"
    if name == "jax":
        import jax

        with jax.default_matmul_precision("tensorfloat32" if allow else "highest"):
            yield
        return
    switches = _torch_tf32_switches(allow)
    saved = [(owner, attribute, getattr(owner, attribute)) for owner, attribute, _ in switches]
    for owner, attribute, value in switches:
        setattr(owner, attribute, value)
    try:
        yield
    finally:
        for owner, attribute, value in saved:
            setattr(owner, attribute, value)


def _torch_tf32_switches(allow: bool) -> list:
    """(owner, attribute, value) that turn TF32 on (``allow``) or off for cuBLAS and cuDNN:
    torch ≥ 2.9's ``fp32_precision`` ("tf32" / "ieee") where it has it (mixing it with the
    legacy flags is an error there), else the legacy ``allow_tf32``."""
    import torch

    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    conv, rnn = getattr(cudnn, "conv", None), getattr(cudnn, "rnn", None)
    if conv is not None and rnn is not None and _readable(lambda: matmul.fp32_precision):
        # cuDNN's convolutions and RNNs both: torch refuses to read a cuDNN flag that differs
        # between the two.
        value = "tf32" if allow else "ieee"
        return [(owner, "fp32_precision", value) for owner in (matmul, conv, rnn)]
    return [(matmul, "allow_tf32", allow), (cudnn, "allow_tf32", allow)]


def _readable(get) -> bool:
    try:
        get()
    except (AttributeError, RuntimeError):
        return False
    return True


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
            "found none): install JAX's CUDA plugin (jax[cuda13]) on a machine with an "
            "NVIDIA GPU, or use --device cpu"
        ) from None


def cuda_missing(frameworks: set[str]) -> str | None:
    """Why no backend of ``frameworks`` can compute on CUDA here, found without importing a
    framework (a CPU-only torch build, no JAX CUDA plugin); None where it may (whether a
    GPU is there is then found by the backend's call, which fails if not)."""
    reasons = []
    if "torch" in frameworks:
        cuda = _torch_cuda_version()
        if cuda is None:
            reasons.append(
                f"torch {installed_version('torch') or '(not installed)'} is a CPU-only build"
            )
    if "jax" in frameworks and not jax_cuda_plugin():
        reasons.append(f"jax {installed_version('jax') or '(not installed)'} has no CUDA plugin")
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
