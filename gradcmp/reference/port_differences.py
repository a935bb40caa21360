"""How far two sides' references are apart, output by output (port.py turns it into a verdict):
exactly, with a Fraction per output, or for a large model on the float64 limbs of both
references at once, exact arithmetic only where the limbs cannot decide."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from ..judging.agreement import to_float
from . import highprec as hp

if TYPE_CHECKING:
    from .values import ReferenceValues

SAME_BITS = 150
_SAME_FACTOR = 1 << SAME_BITS
CONSTANTS_BITS = 40  # the float64 constants' tier (module docstring)
_CONSTANTS_FACTOR = 1 << CONSTANTS_BITS


def same_value(
    a: Fraction, b: Fraction, m_a: Fraction = 0, m_b: Fraction = 0, bits: int = SAME_BITS
) -> bool:
    """|a − b| ≤ 2**-bits · max(|a|, |b|, M_a, M_b): by default, equal up to the 200-bit
    evaluation; with ``bits=CONSTANTS_BITS``, up to float64 constants."""
    if a == b:
        return True
    factor = _SAME_FACTOR if bits == SAME_BITS else 1 << bits
    return abs(a - b) * factor <= max(abs(a), abs(b), abs(m_a), abs(m_b))


def _own_error(values: ReferenceValues, name: str) -> Fraction:
    """The bound on the shadow evaluation's own rounding of output ``name``: its running error
    coefficient e at the working precision, doubled as τ is (2·e·2**-PRECISION_BITS). It is
    what separates two sides' evaluations of a gradient that is exactly 0 (an attention key
    bias), where every scale of that tensor is rounding noise itself."""
    e = values.coefficients.get(name, 0.0) if values.coefficients else 0.0
    if not math.isfinite(e):
        return Fraction(0)
    return Fraction(2 * e) / 2**hp.PRECISION_BITS


def relative(a: Fraction, b: Fraction, scale: Fraction = Fraction(0)) -> float:
    """|a − b| / max(|a|, |b|, scale) (0 where all are 0)."""
    top = max(abs(a), abs(b), abs(scale))
    return to_float(abs(a - b) / top) if top else 0.0


def _differences(
    ra: ReferenceValues,
    rb: ReferenceValues,
    only: list[str] | None = None,
    scale: dict[str, Fraction] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """(outputs beyond the float64 constants' tier, outputs beyond 2**-150 within it), each
    output → its rel, exactly in Fractions (``only``: just these outputs, their tensors'
    largest values given in ``scale``)."""
    va, vb = ra.outputs(), rb.outputs()
    rels: dict[str, float] = {}  # beyond the float64 constants' tier
    slight: dict[str, float] = {}  # beyond 2**-150, within that tier
    zero = Fraction(0)
    # An output's magnitude M, but never above the largest value of its tensor (both sides):
    # the running magnitudes of a deep network (exp of a magnitude, layer after layer) can
    # dwarf every value, and 2**-40 of such an M would call any difference "same".
    if scale is None:
        scale = {}
        for name in {**va, **vb}:
            tensor = name.split("[")[0]
            values = [abs(v[name]) for v in (va, vb) if name in v]
            scale[tensor] = max(scale.get(tensor, zero), *values)
    for name in only if only is not None else {**va, **vb}:  # both sides' outputs, in order
        if name not in va or name not in vb:  # a parameter only one side has
            rels[name] = math.inf
            continue
        cap = scale[name.split("[")[0]]
        m_a = min(ra.magnitudes.get(name, zero), cap)
        m_b = min(rb.magnitudes.get(name, zero), cap)
        if same_value(va[name], vb[name], m_a, m_b):
            continue
        if abs(va[name] - vb[name]) <= _own_error(ra, name) + _own_error(rb, name):
            continue  # both are the 200-bit evaluation's rounding around one value (an exact 0)
        # Relative to the tensor's largest value as well: an element that is rounding noise
        # around an exact 0 (a key bias' gradient) would otherwise be "worst" at rel ~1.
        rel = relative(va[name], vb[name], cap)
        if same_value(va[name], vb[name], m_a, m_b, CONSTANTS_BITS):
            slight[name] = rel
        else:
            rels[name] = rel
    return rels, slight


# Sides with more outputs than this are compared at array speed.
ARRAY_THRESHOLD = 256
_U = 2.0**-53


def _differences_of_arrays(
    ra: ReferenceValues, rb: ReferenceValues
) -> tuple[dict[str, float], dict[str, float]]:
    """``_differences`` at array speed, from the sides' limbs (values.py, ``OutputArrays``):
    every output whose tests are clear in float64 is decided there, the others exactly.

    Where both outputs are ``plain``, a − b = (hi_a − hi_b) + (lo_a − lo_b) + (lo2_a − lo2_b)
    + δ_a − δ_b, |δ| ≤ 2**-53·|lo2| (about 2**-159 of the value, far below the 2**-150 tier).
    Its float64 sum D errs by at most 2**-51·(|s1| + |s2| + |s3|) over the three differences
    (three roundings of at most 2**-53 of what they round, generously), plus the δ's: ``err``.
    The scales (|a|, |b|, a tensor's largest value from hi) are within 2**-53 of the exact
    ones. A test |a − b|·2**k ≤ S is clear where (|D| ± err)·2**k is beyond S by 2**-48 of S
    either way; an output with a difference that is not clear in either test, or whose rel
    would not be within a few ulps (err > 2**-48·|D|), goes to ``_differences``. rel =
    |D| / max(|hi_a|, |hi_b|, cap) is then within 2**-49 of the exact rel."""
    A, B = ra.arrays, rb.arrays
    names = A.names
    starts = A.tensor_starts  # tensors are runs of consecutive outputs
    largest = np.maximum(np.abs(A.hi), np.abs(B.hi))
    with np.errstate(all="ignore"):
        cap = np.repeat(np.maximum.reduceat(largest, starts), np.diff([*starts, len(names)]))
        m_a, m_b = np.minimum(A.magnitude, cap), np.minimum(B.magnitude, cap)
        scale = np.maximum(np.maximum(largest, m_a), m_b)
        s1, s2, s3 = A.hi - B.hi, A.lo - B.lo, A.lo2 - B.lo2
        D = np.abs((s1 + s2) + s3)
        err = 2.0**-51 * (np.abs(s1) + np.abs(s2) + np.abs(s3)) + 2.0**-52 * (
            np.abs(A.lo2) + np.abs(B.lo2)
        )
        top, low = (D + err) * (1 + 4 * _U), (D - err) * (1 - 4 * _U)
        clear = A.plain & B.plain & np.isfinite(scale) & np.isfinite(D)

        def test(bits: int) -> tuple[np.ndarray, np.ndarray]:
            """(clearly within 2**-bits of the scale, clearly beyond it)."""
            bound = np.ldexp(scale, -bits)
            return top <= bound * (1 - 2.0**-48), low >= bound * (1 + 2.0**-48)

        same, not_same = test(SAME_BITS)
        clear &= same | not_same
        own = np.ldexp(2 * _finite(A.coefficient) + 2 * _finite(B.coefficient), -hp.PRECISION_BITS)
        within_own = top <= own * (1 - 2.0**-48)
        clear &= (own == 0) | (own >= 2.0**-1000)  # no subnormal own error
        clear &= same | within_own | (low >= own * (1 + 2.0**-48))
        constants, beyond_constants = test(CONSTANTS_BITS)
        differs = ~same & ~within_own
        clear &= ~differs | ((constants | beyond_constants) & (err <= 2.0**-48 * D))
        rel = D / np.maximum(largest, cap)
    category = np.where(~clear, 3, np.where(~differs, 0, np.where(beyond_constants, 2, 1)))
    # In the outputs' order, as _differences lists them.
    picked = np.flatnonzero(category)
    unclear = [names[i] for i in picked if category[i] == 3]
    exact_rels: dict[str, float] = {}
    exact_slight: dict[str, float] = {}
    if unclear:
        # The exact largest value of an unclear output's tensor: float rounding is monotone,
        # so it is among the elements whose |hi| is the tensor's largest.
        ends = dict(zip(starts, [*starts[1:], len(names)]))
        scale: dict[str, Fraction] = {}
        for start in sorted(
            {starts[np.searchsorted(starts, A.index[k], "right") - 1] for k in unclear}
        ):
            stop = ends[start]
            top_hi = cap[start]
            tied = start + np.flatnonzero(largest[start:stop] == top_hi)
            scale[names[start].split("[", 1)[0]] = max(
                abs(x) for i in tied.tolist() for x in (A.exact(i), B.exact(i))
            )
        exact_rels, exact_slight = _differences(ra, rb, unclear, scale)
    rels: dict[str, float] = {}
    slight: dict[str, float] = {}
    for i, c, r in zip(picked.tolist(), category[picked].tolist(), rel[picked].tolist()):
        name = names[i]
        if c == 2:
            rels[name] = r
        elif c == 1:
            slight[name] = r
        elif name in exact_rels:
            rels[name] = exact_rels[name]
        elif name in exact_slight:
            slight[name] = exact_slight[name]
    return rels, slight


def _finite(e: np.ndarray) -> np.ndarray:
    """_own_error's e: 0 where it is not finite."""
    return np.where(np.isfinite(e), e, 0.0)
