"""The one loss interface every backend shares, and the extra pieces a model brings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ..reference.exact import ExactData

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


class NoSuchSide(LookupError):
    """A backend asked for a loss the model does not have (a port file without ``loss``)."""


class ScalarMath:
    """exp, log, log1p, tanh in the native loops' own dtype: math for Python floats (float64),
    numpy's ufuncs for numpy and ml_dtypes scalars (which keep float32/float16/bfloat16)."""

    def __init__(self, scalar):
        import math

        source = math if scalar is float else np
        self.exp, self.log, self.log1p, self.tanh = (
            source.exp,
            source.log,
            source.log1p,
            source.tanh,
        )


@dataclass(frozen=True)
class DataShape:
    """What a model's parameter shapes depend on: the number of features and, for a
    classifier, of classes (the largest integer label + 1; 0 when y is not labels)."""

    features: int
    classes: int = 0

    @classmethod
    def of(cls, data) -> DataShape:
        y = np.asarray(data.y)
        labels = y.size and np.all(y >= 0) and np.all(y == np.round(y)) and y.max() < 2**31
        return cls(int(data.X.shape[1]), int(y.max()) + 1 if labels else 0)


@dataclass(frozen=True)
class Model:
    """A loss with its parameters, and what else it brings.

    Built-in models and user loss files are both Models. ``native`` (a hand-derived gradient in
    plain loops) is optional: without it the ``native`` backend is skipped. ``exact``,
    ``magnitudes`` and ``rounding_depth`` are optional too: a model that has them (``linear``)
    gets an exact reference and a proven bound; any other is referenced by the high-precision
    autodiff of ``highprec.py`` with its running error bound.
    """

    name: str
    formula: str
    description: str
    # DataShape -> {name: shape}
    param_shapes: Callable[[DataShape], dict[str, tuple[int, ...]]]
    loss: LossFn | None  # None only for a loss file that has just the two sides of a port
    native: NativeFn | None = None
    # numpy_grad(params, X, y) -> (loss, {name: grad}): the hand-derived gradient, vectorised
    # with numpy arrays of the run's dtype (the ``numpy`` backend).
    numpy_grad: Callable | None = None
    native_dtypes: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
    exact: ExactFn | None = None
    # The agreement rule's M per output (exact, same shape as ``exact``'s result) and c per
    # output name ("loss" and each parameter name) for n_features; see agreement.bound.
    magnitudes: ExactFn | None = None
    rounding_depth: Callable[[int], dict[str, int]] | None = None
    underflow_weights: ExactFn | None = None  # W of the rule, shaped like ``exact``'s result
    reference_method: str = ""
    # framework ("torch", "jax", "numpy") -> loss(params, X, y): that framework's own code
    # (one side of a port), used by its backends instead of the generic ``loss``.
    framework_losses: Mapping[str, Callable] = field(default_factory=dict)
    # DataShape -> {name: initial array}; default zeros of param_shapes.
    initial: Callable[[DataShape], dict[str, np.ndarray]] | None = None
    # Raises InputError when the data do not suit the model (labels for a classifier).
    validate: Callable[[Any], None] | None = None
    # Where the model comes from: "built-in" or the loss file's path.
    source: str = "built-in"
    # A port's sides may differ by this relative amount without failing (still reported).
    accept: float = 0.0
    # The target is class labels: every backend and reference receives y as integers.
    integer_targets: bool = False
    # framework ("torch", "jax") -> the loss file's own distributed step (grad_torch_dist,
    # grad_jax_dist): a rank's gradient after the user's own synchronisation.
    distributed_steps: Mapping[str, Callable] = field(default_factory=dict)
    # How a fresh process (a distributed rank) builds this model again: ("file", path),
    # ("mlp", hidden, seed), or () for a built-in model known by its name.
    recipe: tuple = ()

    def initial_params(self, data) -> dict[str, np.ndarray]:
        """The starting point for a Dataset (or DataShape): the model's own, else zeros (as in
        the seed, θ = 0)."""
        shape = data if isinstance(data, DataShape) else DataShape.of(data)
        if self.initial is not None:
            return self.initial(shape)
        return {k: np.zeros(s) for k, s in self.param_shapes(shape).items()}

    def loss_for(self, framework: str, xp) -> tuple[Callable, str]:
        """(loss(params, X, y), which code it is) for a backend of ``framework``; the code is
        named only for a loss file, where it tells the sides of a port apart."""
        named = self.source != "built-in"
        own = self.framework_losses.get(framework)
        if own is not None:
            return own, f"loss_{framework}"
        if self.loss is None:
            raise NoSuchSide(f"the loss file has no loss_{framework} and no generic loss")
        return (lambda params, X, y: self.loss(params, X, y, xp)), "loss" if named else ""

    @property
    def sides(self) -> list[str]:
        """The port's framework sides this model has, in a fixed order: loss_torch, loss_jax."""
        return [f"loss_{f}" for f in ("torch", "jax") if f in self.framework_losses]
