"""The one loss interface every backend shares, and the extra pieces a model brings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..exact import ExactData

# loss(params, X, y, xp) -> 0-d array, written once against the array namespace ``xp``
# (numpy, torch, jax.numpy); ``params`` maps names to that framework's arrays.
LossFn = Callable[[Mapping[str, Any], Any, Any, Any], Any]

# native(params, rows, target, scalar) -> (loss, {name: [grad elements]}): pure Python loops.
# ``params`` maps names to flat lists, ``rows`` is a list of feature lists, every number is of
# type ``scalar`` (``float`` for float64, ``numpy.float32`` for float32) and so is arithmetic.
NativeFn = Callable[..., tuple[Any, dict[str, list[Any]]]]

# exact(params, data) -> (loss, {name: [grad elements]}) in exact rationals; ``params`` maps
# names to flat tuples of Fractions.
ExactFn = Callable[[Mapping[str, tuple[Fraction, ...]], ExactData], tuple[Fraction, dict]]


@dataclass(frozen=True)
class Model:
    """A built-in model: its loss, its parameters, and the hand-derived and exact gradients."""

    name: str
    formula: str
    description: str
    # n_features -> {name: shape}
    param_shapes: Callable[[int], dict[str, tuple[int, ...]]]
    loss: LossFn
    native: NativeFn
    exact: ExactFn
    # The agreement rule's M per output (exact, same shape as ``exact``'s result) and c per
    # output name ("loss" and each parameter name) for n_features; see agreement.bound.
    magnitudes: ExactFn
    rounding_depth: Callable[[int], dict[str, int]]
    reference_method: str

    def initial_params(self, n_features: int) -> dict[str, np.ndarray]:
        """Zeros, as in the seed (θ = 0)."""
        return {k: np.zeros(s) for k, s in self.param_shapes(n_features).items()}
