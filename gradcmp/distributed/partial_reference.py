"""The exact reference of data no process holds whole: each rank computes the reference of its
own rows, weighted by w_r (its share of the loss, shards.py), and rank 0 adds the parts.

For a loss that is a mean (or sum) over rows, L = Σ_r w_r·L_r and ∇L = Σ_r w_r·∇L_r. The parts
are exact rationals (the exact reference), whose sum is the whole data's reference exactly, or
high-precision values (Fractions, each within its 200-bit evaluation error, far below any
dtype's rounding), added exactly. The agreement rule's M and W
are sums over rows too and add the same way; its c (roundings per row) is the largest of the
parts'; the high-precision running coefficients add, rounded up.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ..reference.compute import Reference
from ..reference.rounding import InputRounding
from ..reference.values import ReferenceValues


def weighted(values: ReferenceValues, w: Fraction) -> ReferenceValues:
    def scale(d: dict) -> dict:
        return {k: v * w for k, v in d.items()}

    def scale_up(d: dict) -> dict:  # float coefficients of a bound: never rounded down
        return {k: math.nextafter(float(v) * float(w), math.inf) for k, v in d.items()}

    return ReferenceValues(
        loss=values.loss * w,
        grads=scale(values.grads),
        magnitudes=scale(values.magnitudes),
        depths=dict(values.depths),
        underflow_weights=scale(values.underflow_weights),
        coefficients=scale_up(values.coefficients),
        underflows=scale_up(values.underflows),
    )


def added(parts: list[ReferenceValues]) -> ReferenceValues:
    def total(field: str) -> dict:
        keys = getattr(parts[0], field).keys()
        return {k: sum((getattr(p, field)[k] for p in parts), Fraction(0)) for k in keys}

    def total_up(field: str) -> dict:
        keys = getattr(parts[0], field).keys()
        return {
            k: math.nextafter(math.fsum(getattr(p, field)[k] for p in parts), math.inf)
            for k in keys
        }

    return ReferenceValues(
        loss=sum((p.loss for p in parts), Fraction(0)),
        grads=total("grads"),
        magnitudes=total("magnitudes"),
        depths={k: max(p.depths[k] for p in parts) for k in parts[0].depths},
        underflow_weights=total("underflow_weights"),
        coefficients=total_up("coefficients"),
        underflows=total_up("underflows"),
    )


def partial(reference: Reference, w: Fraction, problem, first: bool) -> dict:
    """What a rank sends rank 0: its reference weighted by w, and its input-rounding counts
    (the parameters' counted by the ``first`` rank only: every rank holds them)."""
    rounding = reference.rounding
    if not first:
        rounding = {d: _without_params(r, problem) for d, r in rounding.items()}
    return {
        "name": reference.name,
        "method": reference.method,
        "seconds": reference.seconds,
        "as_written": weighted(reference.as_written, w),
        "by_dtype": {d: weighted(v, w) for d, v in reference.by_dtype.items()},
        "rounding": rounding,
        "unusable": reference.unusable,
    }


def _without_params(counts: InputRounding, problem) -> InputRounding:
    import dataclasses

    from ..dtypes import DTYPES

    values, rounded, _ = problem.params.rounding(DTYPES[counts.dtype])
    return dataclasses.replace(
        counts, values=counts.values - values, rounded=counts.rounded - rounded
    )


def combined(parts: list[dict]) -> Reference:
    """The full-data reference from every rank's ``partial``."""
    by_dtype = {d: added([p["by_dtype"][d] for p in parts]) for d in parts[0]["by_dtype"]}
    as_written = added([p["as_written"] for p in parts])
    rounding = {}
    for d, values in by_dtype.items():
        counts = [p["rounding"][d] for p in parts]
        shift_abs, shift_rel = {}, {}
        written = as_written.outputs()
        for k, exact in values.outputs().items():
            shift = abs(exact - written[k])
            shift_abs[k] = float(shift)
            shift_rel[k] = float(shift / abs(written[k])) if written[k] else None
        rounding[d] = InputRounding(
            dtype=d,
            values=sum(c.values for c in counts),
            rounded=sum(c.rounded for c in counts),
            max_rel=max(c.max_rel for c in counts),
            shift_abs=shift_abs,
            shift_rel=shift_rel,
        )
    unusable = {d: why for p in parts for d, why in p["unusable"].items()}
    return Reference(
        name=parts[0]["name"],
        method=f"{parts[0]['method']}; {len(parts)} ranks' partial sums added exactly",
        as_written=as_written,
        by_dtype=by_dtype,
        rounding=rounding,
        seconds=max(p["seconds"] for p in parts),
        unusable=unusable,
    )
