"""The values a reference gives: exact outputs with the agreement rule's pieces.

A high-precision reference keeps its outputs as arrays (``OutputArrays``): the 200-bit values
themselves, their float64 limbs (hi, lo, lo2: each the nearest float64 of what the previous
ones leave, so hi + lo + lo2 is the value to ~2**-159 of it) and the rule's companions. The
exact ``Fraction`` of an output is built only when something asks for it (``grads``,
``outputs()``, ``magnitudes`` are mappings that convert on access): judging and the port
verdict read the arrays (judging/judge.py, port.py).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction

import gmpy2
import numpy as np

from ..dtypes import DTYPES, DType
from ..judging import agreement
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
    # The same outputs as arrays (high-precision references only; None for exact ones).
    arrays: OutputArrays | None = None

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

    def outputs(self) -> Mapping[str, Fraction]:
        if self.arrays is not None:  # every output, converted on access
            return _Exact(self.arrays)
        return {"loss": self.loss, **self.grads}

    def floats(self) -> Mapping[str, float]:
        """Every output correctly rounded to float64 (what ``to_float`` of it gives)."""
        if self.arrays is not None:
            return dict(zip(self.arrays.names, self.arrays.hi.tolist()))
        return {k: agreement.to_float(v) for k, v in self.outputs().items()}


# Limbs are exact pictures of a value only well inside float64's range: there every limb that
# is not 0 is a normal number (see OutputArrays), so rounding it to nearest errs by at most
# 2**-53 of it.
LIMB_RANGE = agreement.LIMB_RANGE  # 2**600, where the pre-check trusts the limbs


class OutputArrays:
    """A high-precision reference's outputs, the loss first, then the gradient's elements in
    order: ``names``, the exact values (``objects``: mpfr), their float64 limbs ``hi``, ``lo``,
    ``lo2`` and the rule's M (``magnitude``), e (``coefficient``) and f (``underflow``).

    hi = float(r), lo = float(r − hi), lo2 = float(r − hi − lo), each rounded to nearest, the
    differences exact (in MPFR at 4 × the working precision). ``plain`` marks the outputs for
    which the limbs are a faithful triple-double: r finite, and r = 0 exactly or 2**-600 ≤
    |hi| ≤ 2**600. Then r, hence r − hi and r − hi − lo, are multiples of r's last bit,
    2**(-601 − 199) ≥ 2**-1000 for a ≤ 200-bit value (≤ 400 bits still gives 2**-1000), so a
    remainder that is not 0 is a normal float64 and never rounds to 0: lo = 0 ⟺ r = hi, lo2 =
    0 ⟺ r = hi + lo, and r − (hi + lo + lo2) is at most 2**-53·|lo2| ≤ 2**-159·|r| or so.
    Outside ``plain`` (beyond float64's range, tiny, a NaN) the callers use the exact value.
    """

    def __init__(self, names, objects, magnitude, coefficient, underflow, tensor_starts=None):
        self.names: list[str] = names
        self._tensor_starts: list[int] | None = tensor_starts
        self.objects = objects
        self.magnitude = np.asarray(magnitude, dtype=np.float64)
        self.coefficient = np.asarray(coefficient, dtype=np.float64)
        self.underflow = np.asarray(underflow, dtype=np.float64)
        self._index: dict[str, int] | None = None
        self._fractions: dict[int, Fraction] = {}
        self._limbs()

    def _limbs(self) -> None:
        objects = self.objects
        # A port's side and its generic loss mostly have equal outputs (a faithful port): the
        # limbs are a function of the value, so those of the last arrays made are taken where
        # the values are equal (one comparison each), and worked out only elsewhere.
        global _last_arrays
        last = _last_arrays() if _last_arrays is not None else None
        known = np.zeros(len(objects), dtype=bool)
        if last is not None and len(last.objects) == len(objects):
            with np.errstate(all="ignore"):
                known = np.asarray(objects == last.objects, dtype=bool)  # NaN ≠ NaN: worked out
            known &= last.hi != 0  # a zero's sign (hi = ±0) is its own
        todo = ~known
        previous = gmpy2.get_context()
        gmpy2.set_context(gmpy2.context(precision=4 * highprec.PRECISION_BITS))
        try:
            with np.errstate(all="ignore"):
                hi = np.zeros(len(objects))
                lo, lo2 = np.zeros_like(hi), np.zeros_like(hi)
                if known.any():
                    hi[known], lo[known], lo2[known] = (
                        last.hi[known],
                        last.lo[known],
                        last.lo2[known],
                    )
                hi[todo] = objects[todo].astype(np.float64)
                finite = todo & np.isfinite(hi)
                rest = objects[finite] - hi[finite]  # exact (module docstring)
                lo[finite] = rest.astype(np.float64)
                rest = rest - lo[finite]
                lo2[finite] = rest.astype(np.float64)
        finally:
            gmpy2.set_context(previous)
        _last_arrays = weakref.ref(self)
        size = np.abs(hi)
        plain = np.isfinite(hi) & (size >= 1 / LIMB_RANGE) & (size <= LIMB_RANGE)
        for i in np.flatnonzero(hi == 0):  # an exact 0, or a value below float64's range
            plain[i] = objects[i] == 0
        self.hi, self.lo, self.lo2, self.plain = hi, lo, lo2, plain

    def __len__(self) -> int:
        return len(self.names)

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {name: i for i, name in enumerate(self.names)}
        return self._index

    @property
    def tensor_starts(self) -> list[int]:
        """Where each tensor's run of outputs begins ("loss", then each parameter's elements:
        ``W1[0,0]`` … share the tensor ``W1``)."""
        if self._tensor_starts is None:
            names = self.names
            tensors = [name.split("[", 1)[0] for name in names]
            self._tensor_starts = [0] + [
                i for i in range(1, len(names)) if tensors[i] != tensors[i - 1]
            ]
        return self._tensor_starts

    def exact(self, i: int) -> Fraction:
        """Output ``i``'s exact value (built once, on demand)."""
        x = self._fractions.get(i)
        if x is None:
            x = self._fractions[i] = highprec.to_fraction(self.objects[i])
        return x

    # Pickled (a forked child's reference) as one string of MPFR's binary format, not as 10⁵
    # objects.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__, _index=None, _fractions={})
        blobs = list(map(gmpy2.to_binary, self.objects))
        state["objects"] = (b"".join(blobs), [len(b) for b in blobs])
        return state

    def __setstate__(self, state: dict) -> None:
        blob, lengths = state["objects"]
        objects, at = np.empty(len(lengths), dtype=object), 0
        for i, n in enumerate(lengths):
            objects[i] = gmpy2.from_binary(blob[at : at + n])
            at += n
        self.__dict__.update(state, objects=objects)


# The OutputArrays made last in this process, while something else keeps them (a weak
# reference: nothing is kept alive for this).
_last_arrays: weakref.ref | None = None


class _View(Mapping):
    """Name → one array's entry, converted on access (``skip``: without the loss)."""

    def __init__(self, arrays: OutputArrays, skip: int = 0):
        self.arrays, self.skip = arrays, skip

    def _convert(self, i: int):
        raise NotImplementedError

    def __getitem__(self, name: str):
        i = self.arrays.index[name]
        if i < self.skip:
            raise KeyError(name)
        return self._convert(i)

    def __contains__(self, name) -> bool:
        return self.arrays.index.get(name, -1) >= self.skip

    def __iter__(self) -> Iterator[str]:
        return iter(self.arrays.names[self.skip :])

    def __len__(self) -> int:
        return len(self.arrays.names) - self.skip


class _Exact(_View):
    def _convert(self, i: int) -> Fraction:
        return self.arrays.exact(i)


class _Magnitude(_View):
    def _convert(self, i: int) -> Fraction:
        return Fraction(float(self.arrays.magnitude[i]))


class _Coefficient(_View):
    def _convert(self, i: int) -> float:
        return float(self.arrays.coefficient[i])


class _Underflow(_View):
    def _convert(self, i: int) -> float:
        return float(self.arrays.underflow[i])


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
    of its tensor is never resolved: docs/design.md, "The agreement rule"), kept as arrays
    (``OutputArrays``)."""
    shapes = {k: v.shape for k, v in problem.params.values.items()}
    for name, g in grads.items():
        if g.shape != shapes[name]:
            raise highprec.UnsupportedOperation(f"gradient of {name} came out with shape {g.shape}")
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
    nodes = [out, *grads.values()]
    names = ["loss"]
    for k in grads:
        names += element_names(k, shapes[k])
    objects = np.concatenate([np.asarray(n.v, dtype=object).reshape(-1) for n in nodes])
    arrays = OutputArrays(
        names,
        objects,
        np.concatenate([np.ravel(n.a) for n in nodes]),
        np.concatenate([np.ravel(n.e.real) for n in nodes]),
        np.concatenate([np.ravel(n.e.imag) for n in nodes]),
        tensor_starts=_starts([n.size for n in nodes]),
    )
    for i in np.flatnonzero(~np.isfinite(arrays.hi)):
        highprec.to_fraction(objects[i])  # a NaN or inf raises (a finite mpfr beyond is fine)
    return ReferenceValues(
        arrays.exact(0),
        _Exact(arrays, skip=1),
        _Magnitude(arrays),
        coefficients=_Coefficient(arrays),
        underflows=_Underflow(arrays),
        arrays=arrays,
    )


def _starts(sizes: list[int]) -> list[int]:
    """Where each tensor of these sizes begins in their concatenation (an empty one nowhere)."""
    starts, at = [], 0
    for size in sizes:
        if size:
            starts.append(at)
            at += size
    return starts


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
