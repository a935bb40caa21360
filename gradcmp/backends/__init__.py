"""Backends, one file each, registered by name. A framework is imported only when its backend
runs (``setup``/``compute``); listing and probing import nothing."""

from __future__ import annotations

from ..errors import UsageError
from .base import Backend, Output, missing_modules
from .complex_step import ComplexStep
from .devices import DEVICES, OnDevice, can_move, split_device
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
        base, device = split_device(name)
        if device is not None:
            if device not in DEVICES or base not in self or not can_move(self[base]):
                raise KeyError(name)
            backend = self[base] if device == "cpu" else OnDevice(self[base], device)
        else:
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


def parse_backends(text: str, device: str = "cpu") -> list[str]:
    """``"native,torch-grad"`` → registered names in the order given, duplicates dropped.

    ``device`` (``--device``) moves every torch and JAX backend not given a device of its own
    (``torch-grad@cuda``) there; the others compute on the CPU. ``@cpu`` is the plain name.
    """
    if device not in DEVICES:
        raise UsageError(
            f"unknown device {device!r}", hint=f"choose from {', '.join(DEVICES)}", option="device"
        )
    chosen: list[str] = []
    names = [raw.strip() for raw in text.split(",")]
    if not any(names):
        raise UsageError(
            "no backend named", hint=f"choose from {', '.join(SINGLE_PROCESS)}", option="backends"
        )
    for name in names:
        if name == REFERENCE_NAME:
            continue
        base, on = split_device(name)
        if on is not None:
            name = _on_device(name, base, on)
        elif device != "cpu" and name in BACKENDS and can_move(BACKENDS[name]):
            name = f"{name}@{device}"
        if name == "all":  # every single-process backend; a world is asked for by name
            every = [_placed(b, device) for b in SINGLE_PROCESS]
            chosen.extend(b for b in every if b not in chosen)
            continue
        if "@" in name:
            BACKENDS[name]  # registered on first use (checked by _on_device)
        elif name not in BACKENDS and parse_distributed(name) is None:
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
            hint=f"choose from {', '.join(SINGLE_PROCESS)}",
            option="backends",
        )
    if device != "cpu" and not any(split_device(n)[1] == device for n in chosen):
        raise UsageError(
            f"none of the backends named computes on {device}",
            hint=f"the torch and JAX backends do: {', '.join(_movable())}",
            option="device",
        )
    return chosen


def _movable() -> list[str]:
    return [b for b in SINGLE_PROCESS if can_move(BACKENDS[b])]


def _placed(name: str, device: str) -> str:
    """A registered backend's name on ``device`` where it can move there."""
    return f"{name}@{device}" if device != "cpu" and can_move(BACKENDS[name]) else name


def _on_device(name: str, base: str, device: str) -> str:
    """``torch-grad@cuda`` checked: a known device, a backend that can move there."""
    if device not in DEVICES:
        raise UsageError(
            f"unknown device {device!r} in {name!r}",
            hint=f"devices are {', '.join(DEVICES)}",
            option="backends",
        )
    if base == REFERENCE_NAME:
        raise UsageError(
            f"{base} is the reference: it runs on the CPU, in high precision, whatever "
            "the device",
            hint=f"name a backend to place: {', '.join(_movable())}",
            option="backends",
        )
    if base not in BACKENDS and parse_distributed(base) is None:
        known = ", ".join(SINGLE_PROCESS)
        raise UsageError(
            f"unknown backend {base!r}", hint=f"choose from {known}", option="backends"
        )
    if not can_move(BACKENDS[base]):
        raise UsageError(
            f"{base} computes on the CPU only: it cannot run {name!r}",
            hint=f"a device is for the torch and JAX backends: {', '.join(_movable())}",
            option="backends",
        )
    return base if device == "cpu" else name


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKENDS",
    "REFERENCE_NAME",
    "Backend",
    "Output",
    "missing_modules",
    "parse_backends",
]
