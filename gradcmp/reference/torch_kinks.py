"""Kinks of the torch shadow interpreter: a forward op evaluated exactly where it is not
differentiable (relu at 0, a maximum tie, clamp at a bound), and torch's convention there."""

from __future__ import annotations

import numpy as np

from . import highprec as hp
from .highprec import Tracked
from .torch_rules import COMPARISONS, _axes, _holds, exact


def _tie(x, y=0) -> bool:
    return bool(_holds(exact(x) == exact(y)).any())


def _bound(x, lo=None, hi=None) -> bool:
    return (lo is not None and _tie(x, lo)) or (hi is not None and _tie(x, hi))


def _repeated(x, dim=None, keepdim=False) -> bool:
    """Does a reduced slice hold its maximum, or its minimum, more than once?"""
    axes = _axes(dim, x.ndim) or tuple(range(x.ndim))
    counts = [_holds(x.v == np.max(x.v, axes, keepdims=True)).sum(axes)]
    counts.append(_holds(x.v == np.min(x.v, axes, keepdims=True)).sum(axes))
    return x.size > 0 and any((c > 1).any() for c in counts)


_SPLIT, _PASS = "torch splits the gradient evenly among the ties", "torch passes the gradient"
_FIRST = "torch gives the gradient to the index it returns (the first)"
KINKS = {
    "relu": (_tie, "torch.relu at 0: torch gives slope 0"),
    "leaky_relu": (lambda x, *slope: _tie(x), "F.leaky_relu at 0: torch gives the negative slope"),
    "abs": (_tie, "torch.abs at 0: torch gives slope 0 (sgn 0 = 0)"),
    "sign": (_tie, "torch.sign at 0, a jump: torch gives slope 0"),
    "maximum": (_tie, "torch.maximum at a tie: torch splits the gradient ½/½"),
    "minimum": (_tie, "torch.minimum at a tie: torch splits the gradient ½/½"),
    "clamp": (_bound, f"torch.clamp at a bound: {_PASS} (slope 1)"),
    "clamp_min": (_tie, f"torch.clamp at its min: {_PASS} (slope 1)"),
    "clamp_max": (_tie, f"torch.clamp at its max: {_PASS} (slope 1)"),
    "hardtanh": (_bound, "F.hardtanh at a bound: torch gives slope 0"),
    "amax": (_repeated, f"torch.amax at a tie: {_SPLIT}"),
    "amin": (_repeated, f"torch.amin at a tie: {_SPLIT}"),
    "max.default": (_repeated, f"torch.max at a tie: {_SPLIT}"),
    "min.default": (_repeated, f"torch.min at a tie: {_SPLIT}"),
    "max.dim": (_repeated, f"torch.max(dim) at a tie: {_FIRST}"),
    "min.dim": (_repeated, f"torch.min(dim) at a tie: {_FIRST}"),
    "floor": (lambda x: _tie(x, hp.floor(x)), "torch.floor at an integer, a jump: slope 0"),
    "ceil": (lambda x: _tie(x, hp.ceil(x)), "torch.ceil at an integer, a jump: slope 0"),
}


def kink(op: str, args, kwargs) -> str:
    """What forward op ``op`` met exactly at a kink or tie, with torch's convention there."""
    name = op.removeprefix("aten.")
    entry = KINKS.get(name) or KINKS.get(name.split(".")[0])
    if entry is None or not args or not isinstance(args[0], Tracked):
        return ""
    test, text = entry
    return text if test(*args, **kwargs) else ""


# Ops torch decomposes into one op of the same convention: their kinks are that op's.
RENAMED = {"aten.clamp_min.default", "aten.clamp_max.default", "aten.clamp_min.Tensor"}
RENAMED |= {"aten.clamp_max.Tensor", "aten.sgn.default"}
# Thresholding ops torch decomposes into a where(): a tie of its comparison is their kink.
THRESHOLDS = {"aten.threshold.default", "aten.hardshrink.default", "aten.softshrink.default"}


def compares_equal(op: str, args) -> bool:
    """A comparison (eq, gt, …) of operands equal somewhere: a where() on it meets a tie."""
    return op.split(".")[1] in COMPARISONS and _tie(args[0], args[1])
