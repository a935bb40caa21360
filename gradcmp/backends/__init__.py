"""Backends, one file each, registered by name. A framework is imported only when its backend
runs (``setup``/``compute``); listing and probing import nothing."""

from __future__ import annotations

from ..errors import UsageError
from .base import Backend, Output, missing_modules
from .complex_step import ComplexStep
from .distributed import ENGINES, parse_distributed
from .finite_diff import FiniteDiff
from .jax_fwd import JaxFwd
from .jax_grad import JaxGrad
from .jax_jit import JaxJit
from .native import Native
from .numpy_grad import NumpyGrad
from .torch_backward import TorchBackward
from .torch_func import TorchFunc
from .torch_grad import TorchGrad


class _Registry(dict):
    """Backends by name; a distributed one (``torch-ddp:4``) is made when first named."""

    def __missing__(self, name: str) -> Backend:
        backend = parse_distributed(name)
        if backend is None:
            raise KeyError(name)
        self[name] = backend
        return backend


# The order of the table. The first four are the seed's.
BACKENDS: dict[str, Backend] = _Registry(
    (b.name, b)
    for b in (
        Native(),
        TorchGrad(),
        TorchBackward(),
        JaxGrad(),
        NumpyGrad(),
        TorchFunc(),
        JaxJit(),
        JaxFwd(),
        FiniteDiff(),
        ComplexStep(),
    )
)

# Registered up front: ``-b all`` and ``gradcmp backends`` (distributed ones are made by name).
SINGLE_PROCESS = tuple(BACKENDS)

# What runs without -b: the seed's four (quick); ``-b all`` runs every registered backend.
DEFAULT_BACKENDS = ("native", "torch-grad", "torch-backward", "jax-grad")

# The reference is not a backend one can leave out; ``-b exact`` is accepted and changes nothing.
REFERENCE_NAME = "exact"


def parse_backends(text: str) -> list[str]:
    """``"native,torch-grad"`` → registered names in the order given, duplicates dropped."""
    chosen: list[str] = []
    names = [raw.strip() for raw in text.split(",")]
    if not any(names):
        raise UsageError(
            "no backend named", hint=f"choose from {', '.join(BACKENDS)}", option="backends"
        )
    for name in names:
        if name == REFERENCE_NAME:
            continue
        if name == "all":  # every single-process backend; a world is asked for by name
            chosen.extend(b for b in SINGLE_PROCESS if b not in chosen)
            continue
        if name not in BACKENDS and parse_distributed(name) is None:
            known = ", ".join([*SINGLE_PROCESS, *(f"{e}:N" for e in ENGINES)])
            raise UsageError(
                f"unknown backend {name!r}", hint=f"choose from {known}", option="backends"
            )
        if name.partition(":")[0] in ENGINES:  # one name per world size (torch-ddp: 2 ranks)
            name = parse_distributed(name).name
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise UsageError(
            "exact is the reference, which always runs: name a backend to compare with it",
            hint=f"choose from {', '.join(BACKENDS)}",
            option="backends",
        )
    return chosen


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKENDS",
    "REFERENCE_NAME",
    "Backend",
    "Output",
    "missing_modules",
    "parse_backends",
]
