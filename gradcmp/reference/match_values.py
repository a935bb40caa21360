"""Matching one shadow step's value against another side's (align.py walks the graphs): the
summaries that make matching cheap, the elementwise tolerance, and an index by shape and norm.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .shadow import Step

ULPS = 4
# The elementwise match tolerance, relative to max(|value|, magnitude).
RESOLUTION = ULPS * 2.0**-52
_TINY = ULPS * 2.0**-1074  # float64 images of values in the subnormal range


@dataclass
class _Entry:
    """A step's value in one orientation, with the summaries that make matching cheap."""

    index: int
    shape: tuple[int, ...]  # size-1 axes squeezed (and transposed, for that orientation)
    values: np.ndarray
    scale: np.ndarray | None  # the magnitudes, same shape
    norm: float  # max |finite value|
    mag: float  # max |finite magnitude| (0 where none)
    l1: float  # Σ|finite value| + Σ finite magnitude
    fp: float  # Σ wᵢ·valueᵢ over the finite values, w fixed pseudo-random in [−1, 1]


@functools.lru_cache(maxsize=64)
def _weights(n: int) -> np.ndarray:
    return np.random.default_rng(20240601).uniform(-1.0, 1.0, n)


def _finite(x: np.ndarray) -> np.ndarray:
    """``x`` with its non-finite elements as 0 (``x`` itself where all are finite: the sum of
    |x| is finite exactly then, barring an overflow of the sum, which takes the slow way)."""
    return x if math.isfinite(float(np.abs(x).sum())) else np.where(np.isfinite(x), x, 0.0)


def _fingerprint(values: np.ndarray) -> float:
    flat = _finite(values).ravel()
    # einsum, not np.dot: a BLAS call may wake threads that wait for busy cores
    return float(np.einsum("i,i->", flat, _weights(flat.size))) if flat.size else 0.0


def _entries(step: Step) -> list[_Entry]:
    """The orientations a step's value is matched in: squeezed, and for a 2-D tensor also
    transposed (the same norms and sums; only the weighted sum depends on the order)."""
    if step.value is None:
        return []
    values = np.asarray(step.value, dtype=np.float64)
    scale = None
    if step.magnitude is not None:
        try:
            scale = np.broadcast_to(np.asarray(step.magnitude, dtype=np.float64), values.shape)
        except ValueError:  # a magnitude of another shape says nothing elementwise
            scale = None
    shape = tuple(n for n in values.shape if n != 1)
    values = values.reshape(shape)
    finite = np.abs(_finite(values))
    norm = float(finite.max()) if finite.size else 0.0
    with np.errstate(over="ignore"):  # running magnitudes may sum past float64: inf is fine
        l1, mag = float(finite.sum()), 0.0
        if scale is not None:
            scale = scale.reshape(shape)
            finite_scale = np.abs(_finite(scale))
            mag = float(finite_scale.max()) if finite_scale.size else 0.0
            l1 += float(finite_scale.sum())
    found = [_Entry(step.index, shape, values, scale, norm, mag, l1, _fingerprint(values))]
    if len(shape) == 2:
        t_scale = scale.T if scale is not None else None
        fp = _fingerprint(values.T)
        found.append(_Entry(step.index, shape[::-1], values.T, t_scale, norm, mag, l1, fp))
    return found


def _close(x: _Entry, y: _Entry) -> bool:
    """Equal elementwise to within RESOLUTION of max(|x|, |y|, magnitudes)."""
    if np.array_equal(x.values, y.values):  # the common case: the same float64 images
        return True
    with np.errstate(all="ignore"):
        scale = np.maximum(np.abs(x.values), np.abs(y.values))
        # Magnitudes count up to the tensors' largest value: a deep network's running
        # magnitudes compound past every value, and would let any two tensors match.
        cap = max(x.norm, y.norm)
        for s in (x.scale, y.scale):
            if s is not None:
                scale = np.maximum(scale, np.minimum(np.abs(s), cap))
        finite = np.isfinite(x.values) & np.isfinite(y.values)  # −inf is no match for 0.19
        ok = finite & (np.abs(x.values - y.values) <= RESOLUTION * scale + _TINY)
        ok |= x.values == y.values  # equal infinities
        ok |= np.isnan(x.values) & np.isnan(y.values)
    return bool(ok.all())


class _Bucket:
    def __init__(self, entries: list[_Entry]):
        self.entries = sorted(entries, key=lambda e: e.norm)
        self.norms = [e.norm for e in self.entries]
        self.mag = max((e.mag for e in entries), default=0.0)


class _Index:
    """One side's steps (as-is orientation) by shape, sorted by norm."""

    def __init__(self, entries: list[_Entry]):
        by_shape: dict[tuple[int, ...], list[_Entry]] = defaultdict(list)
        for e in entries:
            by_shape[e.shape].append(e)
        self.buckets = {shape: _Bucket(found) for shape, found in by_shape.items()}

    def find(self, e: _Entry) -> bool:
        """Whether a step of this side equals ``e`` within the tolerance."""
        bucket = self.buckets.get(e.shape)
        if bucket is None:
            return False
        # A match y has |‖e‖∞ − ‖y‖∞| ≤ max|e − y| ≤ RESOLUTION·max(‖e‖∞, ‖y‖∞, magnitudes),
        # and ‖y‖∞ ≤ ‖e‖∞(1 + 2·RESOLUTION): the window below holds every possible match.
        width = RESOLUTION * max(2 * e.norm, e.mag, bucket.mag) * 1.01
        lo = bisect.bisect_left(bucket.norms, e.norm - width)
        hi = bisect.bisect_right(bucket.norms, e.norm + width)
        n = max(e.values.size, 1)
        for y in bucket.entries[lo:hi]:
            if abs(e.norm - y.norm) > RESOLUTION * max(e.norm, y.norm, e.mag, y.mag) * 1.01:
                continue
            # Σ wᵢ(eᵢ − yᵢ) ≤ Σ|eᵢ − yᵢ| ≤ RESOLUTION·(l1(e) + l1(y)), plus the float64
            # rounding of the two weighted sums themselves (≤ n·2**-53 of Σ|terms| each).
            slack = 2 * (RESOLUTION + n * 2.0**-53) * (e.l1 + y.l1) + _TINY
            if abs(e.fp - y.fp) > slack:
                continue
            if _close(e, y):
                return True
        return False
