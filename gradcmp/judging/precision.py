"""A float32 GPU result that departs by what reduced-precision matrix products give.

On NVIDIA GPUs since Ampere a float32 matrix product may run on tensor cores in TF32: each
operand rounded to 10 fraction bits (unit roundoff u′ = 2⁻¹¹), the products accumulated in
float32. JAX's default matmul precision allows it on a GPU (``"bfloat16"`` asks for bf16
passes, u′ = 2⁻⁸); torch allows it where ``allow_tf32`` / ``fp32_precision = "tf32"`` /
``float32_matmul_precision`` "high" says so ("medium": bf16). ``NVIDIA_TF32_OVERRIDE=0`` turns
TF32 off underneath both. Such a result is no float32 result and disagrees.

When is a disagreement "about what TF32 gives"? The rule's τ is γ_m(u)·M plus a term in the
smallest subnormal; γ_m(u) = m·u/(1 − m·u) grows at least linearly in u, and a product of two
operands each rounded at u′ carries 2u′ where the rule counts u. So, away from underflow,
rounding at u′ is bounded by about τ·2u′/u: a result whose every error is within that is one
TF32 can explain. On a large problem that window can reach the values themselves, so two more
tests ask what a bug cannot hide. Every error is at most 32·u′ of its output's magnitude M
(about 1.6 % for TF32): a doubled gradient, a missing ½ or a sign flip fail it. And the median
error, in float32 ulps, is of the order of u′/u (between 1/16 and 4 times it): float32 rounding
leaves a median of a few ulps, TF32 thousands, and a bug confined to a few outputs leaves the
median where float32 put it. A result that the bug-kind check names (×2, ×½, …) is named that
way before any of this is asked (judge.py).

The same median names reduced precision in a result that agrees: a worst-case bound can be wide
enough to hold TF32's errors (the emulated TF32 gradient of a 10-300-300-1 MLP is at 0.1 of
τ), and the row then says that its errors are TF32's, not float32's — a note, not a verdict.

It is a diagnosis, not a verdict: the result still disagrees, and the note says how to tell
TF32 from a bug that happens to be as small — rerun with ``--matmul-precision highest`` (or the
line in the user's code): TF32 agrees then, a bug does not. It is given only for a float32
result computed on a GPU whose framework settings allowed reduced precision (recorded by the
backend, backends/devices.py). cuDNN convolutions' TF32 flag is recorded but not used: gradcmp
cannot tell whether a loss convolves.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping

from ..dtypes import DType
from .agreement import Error

TF32, BF16 = 2.0**-11, 2.0**-8
# An error above this many unit roundoffs of its output's magnitude is not reduced precision.
MAGNITUDE_GAP = 32
# The median error of reduced-precision products, in the dtype's ulps, lies between
# (u′/u)/TYPICAL_BELOW and (u′/u)·TYPICAL_ABOVE.
TYPICAL_BELOW, TYPICAL_ABOVE = 16, 4

TORCH_FIX = (
    "torch.backends.cuda.matmul.allow_tf32 = False (torch ≥ 2.9: "
    'torch.backends.cuda.matmul.fp32_precision = "ieee")'
)
TORCH_MEDIUM_FIX = 'torch.set_float32_matmul_precision("highest")'
JAX_FIX = 'jax.config.update("jax_default_matmul_precision", "highest")'

# jax_default_matmul_precision values that compute float32 products in full (or better).
JAX_FULL = {
    "highest",
    "float32",
    "precision.highest",
    "f32_f32_f32",
    "f64_f64_f64",
    "bf16_bf16_f32_x6",
    "bf16_bf16_f32_x9",
    "tf32_tf32_f32_x3",
}
JAX_BF16 = {"bfloat16", "bf16_bf16_f32", "bf16_bf16_bf16", "bf16_bf16_f32_x3"}


def allows_reduced(settings: Mapping[str, object] | None) -> tuple[str, str, float] | None:
    """(which setting allows it, the line that turns it off, its unit roundoff) where the
    recorded settings let float32 products run in reduced precision; None where they do not
    (or nothing was recorded)."""
    if not settings:
        return None
    tf32_off = settings.get("nvidia_tf32_override") == "0"
    if "jax_default_matmul_precision" in settings:
        value = settings["jax_default_matmul_precision"]
        name = "none" if value is None else str(value).lower()
        if name in JAX_FULL:
            return None
        if name in JAX_BF16:
            return f"jax_default_matmul_precision is {value!r}", JAX_FIX, BF16
        if tf32_off:
            return None
        return (
            f"jax_default_matmul_precision is {value!r} (JAX may use TF32 on the GPU then)",
            JAX_FIX,
            TF32,
        )
    if settings.get("torch_float32_matmul_precision") == "medium":
        return 'torch.get_float32_matmul_precision() is "medium"', TORCH_MEDIUM_FIX, BF16
    if tf32_off:
        return None
    if settings.get("torch_allow_tf32_matmul") is True:
        return "torch.backends.cuda.matmul.allow_tf32 is True", TORCH_FIX, TF32
    if settings.get("torch_fp32_precision_matmul") == "tf32":
        return 'torch.backends.cuda.matmul.fp32_precision is "tf32"', TORCH_FIX, TF32
    if settings.get("torch_float32_matmul_precision") == "high":
        return 'torch.get_float32_matmul_precision() is "high"', TORCH_MEDIUM_FIX, TF32
    return None


def reduced_precision_note(
    errors: Mapping[str, Error], dtype: DType, device: str, settings, disagrees: bool
) -> str | None:
    """The sentence naming reduced-precision products for a float32 GPU result whose errors
    are theirs, else None: the reason of a disagreeing result, a note on one within the bound
    (a worst-case bound can be loose enough to hold TF32's errors: the 10-300-300-1 MLP's
    emulated TF32 result is at 0.1 of τ)."""
    if dtype.name != "float32" or device != "cuda" or not errors:
        return None
    allowed = allows_reduced(settings)
    if allowed is None:
        return None
    why, fix, reduced = allowed
    values = list(errors.values())
    if not all(math.isfinite(e.ratio) and math.isfinite(e.ulp) for e in values):
        return None
    # The typical error, in the dtype's ulps: float32 rounding leaves a few (1.3–2.5 in the
    # emulated MLPs of tests/test_tf32_disagreement_names_its_fix.py), operands at u′ about
    # u′/u (TF32: 3e3–6e3 there). A bug in a few outputs leaves the median at float32's; a bug
    # in most of them moves it far past u′/u.
    typical = statistics.median(e.ulp for e in values)
    scale = reduced / 2.0**-(dtype.precision)
    if not (scale / TYPICAL_BELOW <= typical <= scale * TYPICAL_ABOVE):
        return None
    name = "TF32" if reduced == TF32 else "bf16"
    fix_text = (
        f"{why}; turn it off with {fix}, or run gradcmp with --matmul-precision highest "
        f"({name} then agrees, a bug does not)"
    )
    if not disagrees:
        return (
            f"within float32's bound, but its errors are {name} products', not float32's "
            f"(median {typical:.3g} ulp; float32 rounding leaves a few): {fix_text}"
        )
    worst = max(e.ratio for e in values)
    window = 2 * scale  # τ·2u′/u, as a multiple of τ
    share = max((e.abs / e.magnitude for e in values if e.magnitude > 0), default=math.inf)
    if worst > window or share > MAGNITUDE_GAP * reduced:
        return None
    return (
        f"consistent with {name} matrix products (errors within {worst / window:.2g} of "
        f"their bound, median {typical:.3g} ulp, at most {share:.2g} of the magnitudes): "
        f"{fix_text}"
    )
