"""What a backend is: a named way to compute (loss, gradient) of a Problem in one dtype."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..dtypes import DType
from ..problem import Problem


@dataclass(frozen=True)
class Output:
    """A backend's answer: the loss and the gradient per parameter (any array-likes)."""

    loss: Any
    grads: Mapping[str, Any]
    notes: tuple[str, ...] = ()
    # Which of a loss file's functions produced it ("loss", "loss_torch", "grad_native" …):
    # the side of a port. Empty for built-in models.
    side: str = ""
    # Where a backend compiles first (jax-jit): the compile and the compiled call, apart.
    compile_seconds: float | None = None
    run_seconds: float | None = None
    # Element name → the bound to judge it by, where the backend's own error is not rounding
    # (finite differences' truncation): replaces the rule's τ when larger.
    bounds: dict[str, float] | None = None
    # Element name → ((gain, peak), …) for a gradient computed from loss values (finite
    # differences): an error of at most ε_j in the loss at the j-th pair of points it evaluated
    # reaches that element at most gain_j·ε_j, and peak_j is the largest |loss| computed at
    # that pair. The runner adds Σ gain_j·ε_j to ``bounds``, ε_j the rule's bound for the loss
    # carried to those points (judging/judge.py, ``_loss_bound_near``).
    loss_gains: dict[str, tuple[tuple[float, float], ...]] | None = None
    # A distributed backend (distributed.py): the world (size, engine, comm, rows per shard),
    # the gradient every rank holds (rank order; ``grads`` is rank 0's), and how many
    # roundings its reduction adds to the rule's τ.
    world: dict | None = None
    rank_grads: tuple[Mapping[str, Any], ...] = ()
    extra_roundings: int = 0
    # Where it computed (devices.py), and the framework settings that decide how a GPU
    # rounds float32 products there (TF32, JAX's default matmul precision).
    device: str = "cpu"
    settings: Mapping[str, Any] | None = None


class Backend(Protocol):
    name: str
    description: str
    # Importable top-level modules the backend needs; probed without importing them.
    requires: tuple[str, ...]
    dtypes: tuple[str, ...]

    def setup(self) -> None:
        """Import the framework (timed apart from the computation)."""

    def compute(self, problem: Problem, dtype: DType) -> Output:
        """Loss and gradient of ``problem`` at its parameters, computed in ``dtype``."""


def missing_modules(backend: Backend) -> list[str]:
    return [m for m in backend.requires if importlib.util.find_spec(m) is None]


class SkipBackend(Exception):
    """Raised by ``compute`` when this backend cannot run this problem (the reason says why)."""
