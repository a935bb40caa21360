"""A float32 GPU result that departs by what reduced-precision matrix products give.

On NVIDIA GPUs since Ampere a float32 matrix product may run on tensor cores in TF32: each
operand rounded to 10 fraction bits (unit roundoff 2⁻¹¹), products accumulated in float32.
JAX's default matmul precision allows it (and bf16 passes, unit roundoff 2⁻⁸, on some
platforms); torch allows it where ``allow_tf32`` / ``fp32_precision = "tf32"`` /
``float32_matmul_precision`` "high" or "medium" says so. Such a result is no float32 result:
it misses the float32 bound by about 2¹³ (TF32) or 2¹⁶ (bf16).

The rule's τ is γ_m(u)·M + (terms in the smallest subnormal); γ_m(u) = m·u/(1 − m·u) grows at
least linearly in u, so τ with u replaced by the reduced unit roundoff u' is at least
τ·u'/u. A result whose every error is within τ·u'/u — and beyond τ somewhere — departs by no
more than rounding at u' explains, and the note names the setting that allows it and the line
that turns it off. It is a diagnosis, not a verdict: the result still disagrees (it is not
float32), and the note says how to tell TF32 from a bug — rerun with
``--matmul-precision highest`` (or the line in the user's code): TF32 agrees then, a bug does
not. The note is given only for a result computed on a GPU whose framework allowed reduced
precision (the settings the backend recorded, backends/devices.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ..dtypes import DType
from .agreement import Error

# name → (unit roundoff, how to say it), narrowest last.
REDUCED = (("TF32", 2.0**-11), ("bf16 passes", 2.0**-8))

TORCH_FIX = (
    "torch.backends.cuda.matmul.allow_tf32 = False (torch ≥ 2.9: "
    'torch.backends.cuda.matmul.fp32_precision = "ieee")'
)
JAX_FIX = 'jax.config.update("jax_default_matmul_precision", "highest")'


def allows_reduced(settings: Mapping[str, object] | None) -> str | None:
    """Which framework setting lets float32 products run in reduced precision, as the
    backend recorded it; None where none does (or nothing was recorded)."""
    if not settings:
        return None
    if "jax_default_matmul_precision" in settings:
        value = settings["jax_default_matmul_precision"]
        if value is None or str(value).lower() not in ("highest", "float32", "precision.highest"):
            return f"jax_default_matmul_precision is {value!r} (JAX's default allows it)"
        return None
    if settings.get("torch_allow_tf32_matmul") is True:
        return "torch.backends.cuda.matmul.allow_tf32 is True"
    if settings.get("torch_fp32_precision_matmul") == "tf32":
        return 'torch.backends.cuda.matmul.fp32_precision is "tf32"'
    if settings.get("torch_float32_matmul_precision") in ("high", "medium"):
        value = settings["torch_float32_matmul_precision"]
        return f'torch.get_float32_matmul_precision() is "{value}"'
    return None


def reduced_precision_note(
    errors: Mapping[str, Error], dtype: DType, device: str, settings
) -> str | None:
    """The note for a disagreeing float32 GPU result that reduced-precision products explain,
    else None."""
    if dtype.name != "float32" or device != "cuda":
        return None
    allowed = allows_reduced(settings)
    if allowed is None:
        return None
    ratios = [e.ratio for e in errors.values()]
    if not ratios or not all(math.isfinite(r) for r in ratios) or max(ratios) <= 1:
        return None
    u = 2.0**-(dtype.precision)
    for name, reduced in REDUCED:
        # The bound at u' is at least τ·u'/u: within it, rounding at u' explains the result.
        worst = max(ratios) * u / reduced
        if worst <= 1:
            fix = JAX_FIX if "jax_default_matmul_precision" in settings else TORCH_FIX
            return (
                f"it is what {name} matrix products give ({worst:.2g} of their bound): "
                f"{allowed}; turn it off with {fix}, or run gradcmp with --matmul-precision "
                "highest (TF32 then agrees, a bug does not)"
            )
    return None
