"""The values a reference gives: exact outputs with the agreement rule's pieces."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from .. import agreement
from ..dtypes import DTYPES, DType
from ..params import element_names
from ..problem import Problem
from . import highprec
from .exact import CHUNK_ROWS


@dataclass(frozen=True)
class ReferenceValues:
    loss: Fraction
    grads: dict[str, Fraction]  # element name → exact value
    # The agreement rule's M (output name → exact) and c (output name → roundings per row);
    # empty for the inputs as written, which no backend receives.
    magnitudes: dict[str, Fraction] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    underflow_weights: dict[str, Fraction] = field(default_factory=dict)
    # For the high-precision reference: the running error coefficients per output, e for
    # roundings and f for underflows.
    coefficients: dict[str, float] = field(default_factory=dict)
    underflows: dict[str, float] = field(default_factory=dict)

    def bound(self, output: str, dtype: DType, rows: int) -> Fraction | None:
        """τ for ``output`` computed in ``dtype`` (None: no bound is known, or it is ∞)."""
        if self.depths:
            return agreement.bound(
                dtype,
                rows,
                self.depths[output],
                self.magnitudes[output],
                self.underflow_weights[output],
            )
        if self.coefficients:
            return agreement.running_bound(
                dtype, self.coefficients[output], self.underflows[output]
            )
        return None

    def outputs(self) -> dict[str, Fraction]:
        return {"loss": self.loss, **self.grads}


def flattener(problem: Problem):
    shapes = {k: v.shape for k, v in problem.params.values.items()}

    def flat(per_param: dict) -> dict:
        return {
            element: value
            for name, values in per_param.items()
            for element, value in zip(element_names(name, shapes[name]), values)
        }

    return flat


def tracked_values(problem: Problem, out, grads) -> ReferenceValues:
    """ReferenceValues of a high-precision loss and gradient (Tracked, with their running
    error coefficients and magnitudes; each magnitude capped so that a τ beyond every value
    of its tensor is never resolved: docs/design.md, "The agreement rule")."""
    flat = flattener(problem)
    shapes = {k: v.shape for k, v in problem.params.values.items()}
    for name, g in grads.items():
        if g.shape != shapes[name]:
            raise highprec.UnsupportedOperation(f"gradient of {name} came out with shape {g.shape}")

    def values(node) -> list[Fraction]:
        return [highprec.to_fraction(v) for v in node.v.ravel()]

    loss = highprec.to_fraction(out.v.reshape(())[()])
    grad_values = flat({k: values(g) for k, g in grads.items()})
    # Where the error analysis itself overflows (a 0·∞ in a coefficient), there is no bound:
    # magnitude 0 and an infinite coefficient make that output inconclusive.
    for node in (out, *grads.values()):
        # M decides only "inconclusive": τ beyond RESOLUTION_LIMIT (1 %) of M. The running
        # magnitudes can compound far past every value, even past float64 (an exp of a
        # magnitude per softmax, heavy cancellation), and a τ larger than every value of the
        # tensor would then pass as resolved. M is at most largest / RESOLUTION_LIMIT: such a
        # τ is inconclusive, and a τ below the tensor's values is judged as before. (An M
        # beyond float64 with a finite error coefficient is such an M.)
        largest = np.max(np.abs(node.f), initial=0.0)
        cap = np.maximum(largest, np.abs(node.f)) / float(agreement.RESOLUTION_LIMIT)
        node.a = np.where(np.isfinite(node.e), np.minimum(node.a, cap), node.a)
        broken = ~(np.isfinite(node.a) & np.isfinite(node.e))
        node.a = np.where(broken, 0.0, node.a)
        node.e = np.where(broken, np.inf, node.e)
    magnitudes = {
        "loss": Fraction(float(out.a)),
        **flat({k: [Fraction(a) for a in g.a.ravel().tolist()] for k, g in grads.items()}),
    }
    coefficients = {
        "loss": float(out.e.real),
        **flat({k: g.e.real.ravel().tolist() for k, g in grads.items()}),
    }
    underflows = {
        "loss": float(out.e.imag),
        **flat({k: g.e.imag.ravel().tolist() for k, g in grads.items()}),
    }
    return ReferenceValues(
        loss, grad_values, magnitudes, coefficients=coefficients, underflows=underflows
    )


def same_inputs(problem: Problem, a: str, b: str) -> bool:
    """Whether dtypes ``a`` and ``b`` receive the same values (then one reference serves both)."""
    (Xa, ya), (Xb, yb) = (problem.inputs(DTYPES[d]) for d in (a, b))
    pa, pb = (problem.params.as_dtype(DTYPES[d]) for d in (a, b))
    return (
        _equal_values(Xa, Xb)
        and _equal_values(ya, yb)
        and all(_equal_values(pa[k], pb[k]) for k in pa)
    )


def _equal_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as numbers (across dtypes), compared a part at a time."""
    a, b = np.ravel(a), np.ravel(b)
    return a.size == b.size and all(
        np.array_equal(
            a[i : i + CHUNK_ROWS].astype(np.float64), b[i : i + CHUNK_ROWS].astype(np.float64)
        )
        for i in range(0, a.size, CHUNK_ROWS)
    )
