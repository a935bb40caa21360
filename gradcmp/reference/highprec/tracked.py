"""The numbers: MPFR working precision, conversions, and ``Tracked`` (values with companions).

Every operation module builds on this one and this one imports none of them: ``Tracked``'s
operators that compute (``x + y``, ``x @ y``, ``x[i]``, ``x.T``) are installed by
``operators.py``, which the package imports right after this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from fractions import Fraction

import gmpy2
import numpy as np

from . import remembered

PRECISION_BITS = 200
# Roundings charged to one transcendental function (exp, log, tanh, …): vectorised libm
# implementations (SLEEF, XLA's, Eigen's) promise a few ulps, not correct rounding.
LIBM_ULPS = 4
# Below this an input may be subnormal (in float16, whose smallest normal is the largest of
# the dtypes) and flushed to zero (DAZ): one underflow.
SMALLEST_NORMAL = 2.0**-14
# Conversions and elementwise results of at least this many elements are remembered within a
# reference (remembered.py); a smaller one costs less than its lookup.
REMEMBERED_SIZE = 64


class UnsupportedOperation(Exception):
    """The loss used something the high-precision reference cannot evaluate."""


class NotDifferentiable(Exception):
    """The loss or its gradient is not finite at these parameters (log 0, 1/0, √0's slope)."""


class _Mode:
    """Whether the current working precision follows IEEE semantics (see working_precision)."""

    ieee = False


_mode = _Mode()


@contextlib.contextmanager
def working_precision(ieee: bool = False) -> Iterator[None]:
    """MPFR at PRECISION_BITS, rounding to nearest, numpy's floating-point warnings off.

    ``ieee=False`` (the generic-loss reference): a division by zero (1/0, log 0, 0⁻¹ᐟ²) and an
    invalid operation (0/0, √−1) raise (ArithmeticError), a real function of an argument
    outside its domain (log −1) raises UnsupportedOperation.

    ``ieee=True`` (the framework tracers): nothing traps; the values are IEEE's (log 0 = −∞,
    1/0 = ∞, 0/0 = √−1 = log −1 = NaN) and the companions stay defined: an infinity is exact
    (no rounding of its own; an exact operand adds no error even through an infinite slope),
    a NaN gets e = ∞ + ∞j and a = ∞, and a NaN in any companion becomes ∞.

    The exponent range (±2³⁰ binary orders) is far beyond any float's."""
    previous, previous_ieee = gmpy2.get_context(), _mode.ieee
    gmpy2.set_context(
        gmpy2.context(precision=PRECISION_BITS, trap_divzero=not ieee, trap_invalid=not ieee)
    )
    _mode.ieee = ieee
    try:
        with np.errstate(all="ignore"):
            yield
    finally:
        gmpy2.set_context(previous)
        _mode.ieee = previous_ieee


_working_precision = working_precision  # the name the package used before it was public


# --- Conversions ----------------------------------------------------------------------------


def _to_mpfr(x) -> gmpy2.mpfr:
    if isinstance(x, Fraction):  # a decimal as written: exact up to the working precision
        return gmpy2.mpfr(x.numerator) / x.denominator
    return gmpy2.mpfr(x)


def _objects(values) -> np.ndarray:
    """Values (floats, or Fractions in an object array) as an object array of mpfr."""
    array = np.asarray(values)
    if array.dtype == object:
        return np.asarray(np.frompyfunc(_to_mpfr, 1, 1)(array), dtype=object)
    array = array.astype(np.float64)
    if np.isfinite(array).all():
        # 0 + x: x exactly (a float64 fits the working precision), six times faster than
        # mpfr(x); like mpmath, the high-precision numbers have no −0.
        def convert() -> np.ndarray:
            return np.asarray(array.astype(object) + _ZERO, dtype=object)

        if array.size < REMEMBERED_SIZE or not remembered.active():
            return convert()
        key = ("objects", array.shape, remembered.context_key(), hash(array.tobytes()))
        return remembered.once(
            key, (array.copy(),), lambda seen: np.array_equal(seen[0], array), convert
        )
    previous = gmpy2.get_context()  # a NaN is a value here, not an invalid operation
    gmpy2.set_context(gmpy2.context(precision=PRECISION_BITS))
    try:
        return np.asarray(np.frompyfunc(gmpy2.mpfr, 1, 1)(array), dtype=object)
    finally:
        gmpy2.set_context(previous)


_ZERO, _ONE = gmpy2.mpfr(0), gmpy2.mpfr(1)


def _float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object).astype(np.float64)


def _complex(real, imag) -> np.ndarray:
    """real + imag·j, part by part (``imag * 1j`` would turn an infinite part into NaN)."""
    real, imag = np.broadcast_arrays(real, imag)
    out = np.empty(real.shape, dtype=np.complex128)
    out.real, out.imag = real, imag
    return out


# --- The companions' arithmetic -------------------------------------------------------------


def _rounded(f: np.ndarray) -> np.ndarray:
    """The error of rounding a result (``f``: its value in float64): |f|·u, and one possible
    underflow (imaginary). In IEEE mode an infinite result is exact: no rounding."""
    if _mode.ieee:
        infinite = np.isinf(f)
        return _complex(np.where(infinite, 0.0, np.abs(f)), np.where(infinite, 0.0, 1.0))
    return np.abs(f) + 1j


def _times(e: np.ndarray, s) -> np.ndarray:
    """Error coefficients ``e`` (complex) times a real factor ``s``, with 0·∞ = 0: an exact
    operand adds no error even through an infinite slope (log of an exact 0)."""
    s = np.asarray(s, dtype=np.float64)
    real, imag = e.real * s, e.imag * s
    if not np.isfinite(s).all():
        real, imag = np.where(e.real == 0, 0.0, real), np.where(e.imag == 0, 0.0, imag)
    return _complex(real, imag)


def _scale(s, m) -> np.ndarray:
    """A slope or magnitude times a magnitude, with 0·∞ = 0: exp(−∞) = 0 (a masked score)
    has magnitude 0, not ∞ (IEEE mode; elsewhere everything is finite)."""
    out = np.multiply(s, m)
    if not (np.isfinite(s).all() and np.isfinite(m).all()):
        out = np.where((np.asarray(s) == 0) | (np.asarray(m) == 0), 0.0, out)
    return out


def _emax(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    return _complex(np.maximum(a.real, b.real), np.maximum(a.imag, b.imag))


def _exact_in_float32(array: np.ndarray) -> np.ndarray:
    """Per element: does float32 hold this float64 value exactly?"""
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(np.float32).astype(np.float64) == array


class Tracked:
    """High-precision values ``v`` with error coefficients ``e`` and magnitudes ``a``.

    ``f`` is ``v`` rounded to float64 (computed once, when first needed); ``requires``
    says whether the node depends on a parameter, i.e. whether a gradient must reach it.
    ``floats_exact``: every value is known to be a float64 number (``v`` = ``f``): an input
    or constant given as floats, or such a node moved (reshaped, transposed, broadcast).
    """

    floats_exact = False

    __array_ufunc__ = None  # numpy operands defer to our operators (x * array → __rmul__)

    def __init__(self, v, e, a, parents=(), backward=(), f=None):
        # numpy turns 0-d object results into bare scalars; keep everything an array.
        self.v = v if isinstance(v, np.ndarray) else np.array(v, dtype=object)
        self.e = np.asarray(e, dtype=np.complex128)
        self.a = np.asarray(a, dtype=np.float64)
        self._f = f
        recording = _recording[0]
        self.parents = parents if recording else ()
        self.backward = backward if recording else ()
        self.requires = recording and any(p.requires for p in parents)
        if _mode.ieee:
            self._ieee_companions()

    def _ieee_companions(self) -> None:
        """NaN values have no bound (e = ∞ + ∞j, a = ∞); a NaN companion (0·∞, ∞ − ∞ in the
        error arithmetic) becomes ∞, so that nothing downstream mistakes it for a bound."""
        nan = np.isnan(self.f)
        real, imag = self.e.real, self.e.imag
        self.e = _complex(
            np.where(nan | np.isnan(real), np.inf, real),
            np.where(nan | np.isnan(imag), np.inf, imag),
        )
        self.a = np.where(nan | np.isnan(self.a), np.inf, self.a)

    @property
    def f(self) -> np.ndarray:
        """The values in float64 (correctly rounded from the high-precision ones)."""
        if self._f is None:
            self._f = _float(self.v)
        return self._f

    # --- array protocol -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.v.shape

    @property
    def ndim(self) -> int:
        return self.v.ndim

    @property
    def size(self) -> int:
        return self.v.size

    @property
    def dtype(self):
        return np.dtype(np.float64)

    def __len__(self) -> int:
        return len(self.v)

    def __float__(self) -> float:
        return float(self.v.reshape(())[()]) if self.size == 1 else float("nan")

    def astype(self, dtype, copy=True):
        kind = np.dtype(dtype).kind
        if kind in "iub":
            return np.array([int(x) for x in self.v.ravel()]).reshape(self.shape).astype(dtype)
        return self

    def __pos__(self):
        return self

    # Comparisons give plain boolean arrays (for ``where`` masks, one-hot labels), from the
    # values; so Tracked arrays are not hashable (nothing here hashes them).
    __hash__ = None

    def __eq__(self, other):
        return _values_of(self) == _values_of(other)

    def __ne__(self, other):
        return _values_of(self) != _values_of(other)

    def __lt__(self, other):
        return _values_of(self) < _values_of(other)

    def __le__(self, other):
        return _values_of(self) <= _values_of(other)

    def __gt__(self, other):
        return _values_of(self) > _values_of(other)

    def __ge__(self, other):
        return _values_of(self) >= _values_of(other)


# While the backward pass runs, new nodes record no parents (nothing differentiates them).
_recording = [True]


def _values_of(x) -> np.ndarray:
    return x.f if isinstance(x, Tracked) else np.asarray(x, dtype=np.float64)


def constant(value) -> Tracked:
    """A constant of the loss (``2``, ``0.5``, an index array): exact where float32 holds it,
    else charged one rounding (the framework converts it to its dtype)."""
    array = np.asarray(value, dtype=np.float64)
    exact = _exact_in_float32(array)
    floats = array + 0.0  # −0 is 0 here, as in the high-precision values
    node = Tracked(_objects(array), np.where(exact, 0.0, np.abs(array)), np.abs(array), f=floats)
    node.floats_exact = bool(np.isfinite(floats).all())
    return node


def leaf(values) -> Tracked:
    """An input: the values a backend receives (floats), or as written (Fractions); no error."""
    array = np.asarray(values)
    magnitude = np.abs(array.astype(np.float64))
    flushable = (magnitude > 0) & (magnitude < SMALLEST_NORMAL)
    floats = None if array.dtype == object else array.astype(np.float64) + 0.0  # no −0
    node = Tracked(_objects(array), 1j * flushable, magnitude, f=floats)
    node.floats_exact = floats is not None and bool(np.isfinite(floats).all())
    return node


def _wrap(x) -> Tracked:
    return x if isinstance(x, Tracked) else constant(x)


def _zeros(shape_: tuple[int, ...]) -> Tracked:
    """Exact zeros: the gradient of what a loss does not depend on, or of a step function."""
    return Tracked(_objects(np.zeros(shape_)), np.zeros(shape_), np.zeros(shape_))


def to_fraction(value) -> Fraction:
    """A high-precision number (an mpfr of this module, or an mpmath mpf) as the exact rational
    it is; any other number is first rounded to 53 bits, as ``mpmath.mpf(value)`` does."""
    if not isinstance(value, gmpy2.mpfr) and hasattr(value, "_mpf_"):
        # an mpmath number: (sign, mantissa, exponent, bits)
        sign, mantissa, exponent, _ = value._mpf_
        if not mantissa and exponent:  # ±inf or nan
            raise ValueError(f"the loss or its gradient is {value}")
        return (-1) ** sign * Fraction(mantissa) * Fraction(2) ** exponent
    number = value if isinstance(value, gmpy2.mpfr) else gmpy2.mpfr(value, 53)
    if not gmpy2.is_finite(number):
        raise ValueError(f"the loss or its gradient is {number}")
    numerator, denominator = number.as_integer_ratio()  # in lowest terms
    return Fraction(int(numerator), int(denominator))
