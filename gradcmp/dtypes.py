"""Floating-point formats a backend can compute in, with the constants the comparison needs."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from .errors import UsageError


@dataclass(frozen=True)
class DType:
    """An IEEE-754 binary format.

    ``precision`` counts the significand bits including the hidden one (53 for float64), so the
    unit roundoff is ``u = 2**-precision`` and the spacing of floats in [2**e, 2**(e+1)) is
    ``2**(e - precision + 1)``; ``min_exponent`` is the exponent of the smallest normal number.
    """

    name: str
    precision: int
    min_exponent: int

    @property
    def max_value(self) -> Fraction:
        """The largest finite number: (2 − 2**(1−p))·2**emax, emax = 1 − emin."""
        return (2 - Fraction(2) ** (1 - self.precision)) * Fraction(2) ** (1 - self.min_exponent)

    @property
    def unit_roundoff(self) -> float:
        return 2.0**-self.precision

    def ulp(self, x: Fraction) -> Fraction:
        """Spacing of this format's floats at the exact value ``x`` (subnormal spacing near 0)."""
        return Fraction(2) ** self.ulp_exponent(x)

    def ulp_exponent(self, x: Fraction) -> int:
        """k with ulp(x) = 2**k."""
        p, q = abs(x.numerator), x.denominator
        exponent = self.min_exponent if p == 0 else max(_floor_log2(p, q), self.min_exponent)
        return exponent - self.precision + 1

    @property
    def numpy_dtype(self):
        """The numpy dtype: numpy's own, or ml_dtypes' bfloat16 (installed with JAX)."""
        import numpy as np

        if self.name == "bfloat16":
            try:
                import ml_dtypes
            except ImportError:
                raise UsageError(
                    "bfloat16 needs the ml_dtypes package", hint="pip install ml_dtypes"
                ) from None
            return np.dtype(ml_dtypes.bfloat16)
        return np.dtype(self.name)

    def round(self, values):
        """``values`` (numpy float64 data) rounded to this format, as numpy arrays of it."""
        import numpy as np

        return np.asarray(values).astype(self.numpy_dtype, copy=False)


def floor_log2(x: Fraction) -> int:
    """floor(log2(x)) for an exact positive rational, without rounding."""
    return _floor_log2(x.numerator, x.denominator)


def _floor_log2(p: int, q: int) -> int:
    e = p.bit_length() - q.bit_length()
    # Bit lengths give 2**(e-1) < x < 2**(e+1); one comparison (in integers) settles which
    # side of 2**e.
    return e if (p >= q << e if e >= 0 else p << -e >= q) else e - 1


FLOAT64 = DType("float64", precision=53, min_exponent=-1022)
FLOAT32 = DType("float32", precision=24, min_exponent=-126)
FLOAT16 = DType("float16", precision=11, min_exponent=-14)
BFLOAT16 = DType("bfloat16", precision=8, min_exponent=-126)

DTYPES: dict[str, DType] = {d.name: d for d in (FLOAT64, FLOAT32, FLOAT16, BFLOAT16)}
ALIASES = {
    "f64": "float64",
    "double": "float64",
    "f32": "float32",
    "single": "float32",
    "f16": "float16",
    "half": "float16",
    "bf16": "bfloat16",
}


def parse_dtypes(text: str) -> list[DType]:
    """``"float32,float64"`` → DTypes in the order given, duplicates dropped."""
    chosen: list[DType] = []
    if not text.strip():
        raise UsageError("no dtype named", hint=f"choose from {', '.join(DTYPES)}", option="dtypes")
    for raw in text.split(","):
        name = ALIASES.get(raw.strip().lower(), raw.strip().lower())
        if name not in DTYPES:
            known = ", ".join(DTYPES)
            raise UsageError(
                f"unknown dtype {raw.strip()!r}", hint=f"choose from {known}", option="dtypes"
            )
        if DTYPES[name] not in chosen:
            chosen.append(DTYPES[name])
    return chosen
