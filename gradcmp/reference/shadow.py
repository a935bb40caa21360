"""Shadow evaluation: what one side of a port computes, exactly (docs/design.md, "Ports").

A tracer (``trace_jax``, ``trace_torch``) records the graph its framework really
differentiates — forward *and* backward, the framework's own derivative rules included — and
evaluates every operation of it in high precision with the running error bound of
``highprec`` (MPFR values ``v``, error coefficients ``e``, magnitudes ``a``). The result is a
``ShadowGraph``: the side's exact loss and gradient (its reference) and one ``Step`` per
operation, which ``align`` matches across the two sides to locate where they part.

Steps keep float64 images of their values, not the MPFR arrays: two values that agree to
200 bits round to the same float64 or to neighbours, which is all the alignment needs, and a
transformer's backward pass holds hundreds of parameter-sized tensors.
"""

from __future__ import annotations

import linecache
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .highprec import Tracked

FORWARD, BACKWARD, INPUT = "forward", "backward", "input"


@dataclass
class Step:
    """One operation of a side's graph, as the shadow evaluation saw it."""

    index: int  # position in evaluation order (0, 1, …); inputs come first
    op: str  # the primitive or ATen op: "tanh", "dot_general", "aten.gelu.default", "input"
    inputs: tuple[int, ...]  # indices of the steps whose values it consumed (tensors only)
    value: np.ndarray | None  # float64 image of the exact value; None where not a float tensor
    magnitude: np.ndarray | None = None  # the ``a`` companion (same computation on |terms|)
    phase: str = FORWARD  # forward | backward | input
    name: str = ""  # for inputs: "X", "y", or the parameter's name
    file: str = ""  # the user's file this operation was written in ("" if not known)
    line: int = 0  # 1-based line in ``file``
    code: str = ""  # that line's source text, stripped
    kink: str = ""  # non-empty where the op ran exactly at a kink or tie: what, and the
    # framework's convention there ("relu at 0: torch gives slope 0")
    narrows: str = ""  # a cast to a narrower float dtype ("float32"): the exact value is kept,
    # but a float64 run computes in that dtype from here

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else self.file


@dataclass
class ShadowGraph:
    """A side's exact semantics at one point: its loss, gradient and the steps that made them."""

    side: str  # "loss_torch" | "loss_jax"
    framework: str  # "torch" | "jax"
    loss: Tracked  # 0-d
    grads: dict[str, Tracked]  # parameter name → gradient, shaped like the parameter
    steps: list[Step]
    outputs: dict[str, int] = field(default_factory=dict)  # "loss" and each param → step
    seconds: float = 0.0  # tracing and evaluation

    def kinks(self) -> list[Step]:
        return [s for s in self.steps if s.kink]


def source_line(file: str, line: int) -> str:
    """The text of ``file``'s 1-based ``line``, stripped ('' where it cannot be read)."""
    if not file or not line:
        return ""
    return linecache.getline(file, line).strip()


def user_location(frames: list[tuple[str, int]], user_file: str) -> tuple[str, int]:
    """The (file, line) a step was written at: the innermost of ``frames`` (outermost first)
    in the user's own code — outside the frameworks, installed packages and gradcmp — so
    that a loss file calling its own port module points into that module; else the innermost
    frame in ``user_file``; else ('', 0)."""
    own = [(f, n) for f, n in frames if not _library(f)]
    if own:
        return own[-1]
    target = _resolved(user_file)
    inside = [(f, n) for f, n in frames if _resolved(f) == target]
    return inside[-1] if inside else ("", 0)


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, ValueError):
        return path


_GRADCMP = str(Path(__file__).resolve().parent.parent)


def _library(path: str) -> bool:
    """Code that is not the user's: installed packages, Python's own, gradcmp."""
    if path.startswith("<"):
        return True
    resolved = _resolved(path)
    return (
        "site-packages" in resolved
        or "dist-packages" in resolved
        or resolved.startswith(_GRADCMP + "/")
        or resolved.startswith(sys.base_prefix + "/lib/")
    )


def why_not_finite(op: str, inputs: list[np.ndarray], output: np.ndarray) -> str:
    """What made ``op`` give NaN or ±inf from finite inputs, in a few words: "0·log 0",
    "0/0", "inf − inf", "log of 0", "overflow" …; '' where the output is finite or an input
    already was not."""
    out = np.asarray(output, dtype=np.float64)
    if np.isfinite(out).all() or any(not np.isfinite(np.asarray(x)).all() for x in inputs):
        return ""
    nan = bool(np.isnan(out).any())
    name = op.lower()
    zero_in = any((np.asarray(x) == 0).any() for x in inputs)
    if "log" in name:
        return "log of 0" if zero_in else "log of a negative number"
    if "div" in name:
        return "0/0" if nan else "division by 0"
    if "sqrt" in name or "rsqrt" in name or "pow" in name:
        return "√ of a negative number" if nan else "a negative power of 0"
    if nan and ("mul" in name or "dot" in name or "mm" in name):
        return "0·∞"
    if nan:
        return "an invalid operation (0/0, 0·∞, ∞ − ∞)"
    return "overflow: the exact value is beyond the largest float64"


def describe_nonfinite(side: str, step: Step, why: str) -> str:
    """One line: which side, which op at which line produced the NaN or inf, and why."""
    where = f" at {step.where}" if step.where else ""
    code = f" (`{step.code}`)" if step.code else ""
    kind = "NaN" if step.value is not None and np.isnan(step.value).any() else "inf"
    return f"{side}: {step.op}{where}{code} gives {kind}: {why}"


def finite_images(value: Tracked) -> tuple[np.ndarray, np.ndarray]:
    """(float64 image of the values, magnitudes) of a tracked value, for a Step."""
    f = np.asarray(value.f, dtype=np.float64)
    a = np.asarray(value.a, dtype=np.float64)
    return f, a


def relative_gap(a: np.ndarray, b: np.ndarray, scale_a=None, scale_b=None) -> float:
    """max |a − b| / max(|a|, |b|, magnitudes), a size of how far two tensors part; 0 for
    equal, inf where only one is finite."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    with np.errstate(all="ignore"):
        diff = np.abs(a - b)
        diff = np.where(a == b, 0.0, diff)  # equal infinities part by 0
        scale = np.maximum(np.abs(a), np.abs(b))
        for s in (scale_a, scale_b):
            if s is not None:
                scale = np.maximum(scale, np.abs(np.asarray(s, dtype=np.float64)))
        if not diff.size:
            return 0.0
        top = float(np.max(scale))
        if not np.isfinite(diff).all():
            return math.inf
        return float(np.max(diff)) / top if top > 0 else (0.0 if not diff.any() else math.inf)


__all__ = [
    "BACKWARD",
    "FORWARD",
    "INPUT",
    "ShadowGraph",
    "Step",
    "describe_nonfinite",
    "finite_images",
    "relative_gap",
    "source_line",
    "user_location",
    "why_not_finite",
]
