"""The reference for any loss: high-precision reverse-mode autodiff with a running error bound.

A loss written once against ``xp`` runs here on numpy object arrays of ``gmpy2.mpfr``
numbers (MPFR: 200-bit significands, about 60 digits, every operation and function correctly
rounded), so its value and gradient come out to far more than 30 significant digits. Each
array also carries, per element, two float64 companions:

``e``, the first-order error coefficients, complex: a backend that computes the same value in a
dtype with unit roundoff u and smallest normal η gets within about ``e.real·u + e.imag·η`` of
it (the imaginary part counts operations that may underflow or flush to zero, weighted by
what multiplies them later: the same propagation rules as the roundings, so one array
carries both). Every elementary operation adds
one rounding of its result (``|z|``) to the propagated errors of its operands (Wilkinson's
running error analysis; Higham, *Accuracy and Stability of Numerical Algorithms*, §3.3); a sum
of k terms adds ``(k−1)·Σ|terms|``, Higham's bound for every summation order (§4.2); a
transcendental function adds ``LIBM_ULPS`` roundings, since vectorised libraries are not
correctly rounded. The gradient is computed by the same tracked operations, so its ``e`` is
the error analysis of the backward pass.

``a``, the magnitude: the same computation with every term in absolute value (M in the
agreement rule), the scale against which the bound's resolution is judged.

Casts (``astype`` to a float dtype) change nothing here: the reference is the mathematics.

Speed. Elementwise operations run element by element in MPFR (numpy object arrays of
mpfr); a matrix product does not: its operands are cut into integer limbs, the limbs
multiplied by float64 matrix products (exact: every partial sum is an integer below 2**53)
and recombined, so each element of ``x @ y`` is the exact sum of the exact products, rounded
once (``_exact_matmul``; element by element where the limbs would not fit). Everything about
the companions is float64 numpy: a matrix product's ``e`` and ``a`` are float64 matrix
products of the operands' companions, the same sums the elementwise rules add up. Gradients
flow only into what depends on a parameter, never into X or y. numpy's BLAS runs on one
thread meanwhile (``_one_blas_thread``).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import math
import os
from collections.abc import Callable, Iterator, Mapping
from fractions import Fraction

import gmpy2
import numpy as np

PRECISION_BITS = 200
# Roundings charged to one transcendental function (exp, log, tanh, …): vectorised libm
# implementations (SLEEF, XLA's, Eigen's) promise a few ulps, not correct rounding.
LIBM_ULPS = 4


class UnsupportedOperation(Exception):
    """The loss used something the high-precision reference cannot evaluate."""


class NotDifferentiable(Exception):
    """The loss or its gradient is not finite at these parameters (log 0, 1/0, √0's slope)."""


@contextlib.contextmanager
def _working_precision() -> Iterator[None]:
    """MPFR at PRECISION_BITS, rounding to nearest; a division by zero (1/0, log 0, 0⁻¹ᐟ²) and
    an invalid operation (0/0, √−1) raise (ArithmeticError) instead of giving ±inf or NaN.
    The exponent range (±2³⁰ binary orders) is far beyond any float's."""
    previous = gmpy2.get_context()
    gmpy2.set_context(gmpy2.context(precision=PRECISION_BITS, trap_divzero=True, trap_invalid=True))
    try:
        yield
    finally:
        gmpy2.set_context(previous)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's OpenBLAS on one thread while the reference runs. Its matrix products here are
    small, and where the other cores are busy (gradcmp's backend workers run beside the
    reference) a second BLAS thread waiting for a core makes them several times slower."""
    calls = _blas_thread_calls()
    if calls is None:
        yield
        return
    get, set_ = calls
    previous = get()
    set_(1)
    try:
        yield
    finally:
        set_(previous)


@functools.cache
def _blas_thread_calls():
    """(get_num_threads, set_num_threads) of the OpenBLAS inside numpy's wheel, or None."""
    root = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*"))
    paths += glob.glob(os.path.join(root, ".dylibs", "*openblas*"))
    for path in paths:
        try:
            library = ctypes.CDLL(path)  # already loaded by numpy: the same library
        except OSError:
            continue
        for name in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(library, f"{name}_get_num_threads{suffix}", None)
                set_ = getattr(library, f"{name}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    return get, set_
    return None


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
        return np.asarray(array.astype(object) + _ZERO, dtype=object)
    previous = gmpy2.get_context()  # a NaN is a value here, not an invalid operation
    gmpy2.set_context(gmpy2.context(precision=PRECISION_BITS))
    try:
        return np.asarray(np.frompyfunc(gmpy2.mpfr, 1, 1)(array), dtype=object)
    finally:
        gmpy2.set_context(previous)


_ZERO, _ONE = gmpy2.mpfr(0), gmpy2.mpfr(1)


def _float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object).astype(np.float64)


def _rounded(f: np.ndarray) -> np.ndarray:
    """The error of rounding a result (``f``: its value in float64): |f|·u, and one possible
    underflow (imaginary)."""
    return np.abs(f) + 1j


def _emax(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    return np.maximum(a.real, b.real) + 1j * np.maximum(a.imag, b.imag)


# Below this an input may be subnormal (in float16, whose smallest normal is the largest of
# the dtypes) and flushed to zero (DAZ): one underflow.
SMALLEST_NORMAL = 2.0**-14


def _exact_in_float32(array: np.ndarray) -> np.ndarray:
    """Per element: does float32 hold this float64 value exactly?"""
    with np.errstate(over="ignore", invalid="ignore"):
        return array.astype(np.float32).astype(np.float64) == array


class Tracked:
    """High-precision values ``v`` with error coefficients ``e`` and magnitudes ``a``.

    ``f`` is ``v`` rounded to float64 (computed once, when first needed); ``requires``
    says whether the node depends on a parameter, i.e. whether a gradient must reach it.
    """

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

    @property
    def T(self) -> Tracked:
        return transpose(self)

    def reshape(self, *shape) -> Tracked:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
        return reshape(self, tuple(shape))

    def astype(self, dtype, copy=True):
        kind = np.dtype(dtype).kind
        if kind in "iub":
            return np.array([int(x) for x in self.v.ravel()]).reshape(self.shape).astype(dtype)
        return self

    def sum(self, axis=None, keepdims=False):
        return sum_(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis=axis, keepdims=keepdims)

    def __getitem__(self, index) -> Tracked:
        return getitem(self, index)

    # --- arithmetic -----------------------------------------------------------------------
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return subtract(self, other)

    def __rsub__(self, other):
        return subtract(other, self)

    def __mul__(self, other):
        return multiply(self, other)

    def __rmul__(self, other):
        return multiply(other, self)

    def __truediv__(self, other):
        return divide(self, other)

    def __rtruediv__(self, other):
        return divide(other, self)

    def __neg__(self):
        return negative(self)

    def __pos__(self):
        return self

    def __pow__(self, power):
        return pow_(self, power)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __abs__(self):
        return abs_(self)

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


_recording = [True]


def _values_of(x) -> np.ndarray:
    return x.f if isinstance(x, Tracked) else np.asarray(x, dtype=np.float64)


def constant(value) -> Tracked:
    """A constant of the loss (``2``, ``0.5``, an index array): exact where float32 holds it,
    else charged one rounding (the framework converts it to its dtype)."""
    array = np.asarray(value, dtype=np.float64)
    exact = _exact_in_float32(array)
    floats = array + 0.0  # −0 is 0 here, as in the high-precision values
    return Tracked(_objects(array), np.where(exact, 0.0, np.abs(array)), np.abs(array), f=floats)


def leaf(values) -> Tracked:
    """An input: the values a backend receives (floats), or as written (Fractions); no error."""
    array = np.asarray(values)
    magnitude = np.abs(array.astype(np.float64))
    flushable = (magnitude > 0) & (magnitude < SMALLEST_NORMAL)
    floats = None if array.dtype == object else array.astype(np.float64) + 0.0  # no −0
    return Tracked(_objects(array), 1j * flushable, magnitude, f=floats)


def _wrap(x) -> Tracked:
    return x if isinstance(x, Tracked) else constant(x)


def _unbroadcast(g: Tracked, shape: tuple[int, ...]) -> Tracked:
    """Sum a gradient over the axes that broadcasting added or stretched."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and g.shape[extra + i] != 1
    )
    reduced = sum_(g, axis=axes, keepdims=True) if axes else g
    return reshape(reduced, shape)


def _binary(x, y, v, e, a, dx: Callable, dy: Callable, f=None) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    return Tracked(
        v,
        e,
        a,
        (x, y),
        (lambda g: _unbroadcast(dx(g), x.shape), lambda g: _unbroadcast(dy(g), y.shape)),
        f,
    )


def add(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v + y.v
    f = _float(v)
    return _binary(x, y, v, x.e + y.e + _rounded(f), x.a + y.a, lambda g: g, lambda g: g, f)


def subtract(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v - y.v
    f = _float(v)
    return _binary(
        x, y, v, x.e + y.e + _rounded(f), x.a + y.a, lambda g: g, lambda g: negative(g), f
    )


def multiply(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v * y.v
    f = _float(v)
    fx, fy = np.abs(x.f), np.abs(y.f)
    e = x.e * fy + y.e * fx + _rounded(f)
    return _binary(x, y, v, e, x.a * y.a, lambda g: multiply(g, y), lambda g: multiply(g, x), f)


def divide(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v / y.v
    f = _float(v)
    fx, fy = np.abs(x.f), np.abs(y.f)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = x.e / fy + y.e * fx / (fy * fy) + _rounded(f)
        a = x.a / fy
    return _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: divide(g, y),
        # ∂(x/y)/∂y = −x/y²: from x and y themselves, whose errors are tracked
        lambda g: negative(divide(multiply(g, x), multiply(y, y))),
        f,
    )


def negative(x) -> Tracked:
    x = _wrap(x)
    return Tracked(-x.v, x.e, x.a, (x,), (lambda g: negative(g),), -x.f)


def abs_(x) -> Tracked:
    x = _wrap(x)
    sign = np.sign(x.f)
    return Tracked(
        np.abs(x.v), x.e, x.a, (x,), (lambda g: multiply(g, constant(sign)),), np.abs(x.f)
    )


def pow_(x, power) -> Tracked:
    x = _wrap(x)
    if isinstance(power, Tracked):
        raise UnsupportedOperation("a tracked exponent")
    p = float(power)
    if p == 2:
        return multiply(x, x)
    v = _elementwise(
        lambda t: t**p,
        x.v,
        f"a power {p:g} of a negative number",
        None if p.is_integer() else (lambda f: f < 0),
    )
    fv = _float(v)
    fx = np.abs(x.f)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.abs(p * fx ** (p - 1))
    e = slope * x.e + LIBM_ULPS * _rounded(fv)
    return Tracked(
        v,
        e,
        np.maximum(np.abs(fv), slope * x.a),
        (x,),
        (lambda g: multiply(g, multiply(constant(p), pow_(x, p - 1))),),
        fv,
    )


def _elementwise(fn, values: np.ndarray, complex_result: str = "", outside=None) -> np.ndarray:
    """fn on every element. Where the result is not real (√ or log of a negative number: an
    element for which ``outside(float64 values)`` holds, or one MPFR finds invalid) the
    reference has no value to offer: UnsupportedOperation (the float64 fallback reports it).
    That is checked first, so a complex value elsewhere wins over a log 0 (NotDifferentiable)."""
    if outside is not None and values.size and np.any(outside(_float(values))):
        raise UnsupportedOperation(f"{complex_result} (a complex value)")
    try:
        if values.shape:
            return np.asarray(np.frompyfunc(fn, 1, 1)(values), dtype=object)
        return np.array(fn(values[()]), dtype=object)
    except gmpy2.InvalidOperationError:
        if not complex_result:
            raise
        raise UnsupportedOperation(f"{complex_result} (a complex value)") from None


def _unary(x, fn, slope_fn, backward, complex_result: str = "", outside=None) -> Tracked:
    """z = fn(x) with |dz/dx| = slope_fn(x, z) (floats) and backward(g, x, z) → Tracked; the
    backward rule reuses the forward node z itself, so its forward error counts there too."""
    x = _wrap(x)
    v = _elementwise(fn, x.v, complex_result, outside)
    fx, fz = x.f, _float(v)
    slope = np.abs(slope_fn(fx, fz))
    e = slope * x.e + LIBM_ULPS * (np.abs(fz) + 1j)
    a = np.maximum(np.abs(fz), slope * x.a)
    z = Tracked(v, e, a, (x,), (), fz)
    if _recording[0]:
        z.backward = (lambda g: backward(g, x, z),)
    return z


def exp(x) -> Tracked:
    return _unary(x, gmpy2.exp, lambda fx, fz: fz, lambda g, x, z: multiply(g, z))


def log(x) -> Tracked:
    return _unary(
        x,
        gmpy2.log,
        lambda fx, fz: 1 / fx,
        lambda g, x, z: divide(g, x),
        "log of a negative number",
        lambda f: f < 0,
    )


def log1p(x) -> Tracked:
    return _unary(
        x,
        gmpy2.log1p,
        lambda fx, fz: 1 / (1 + fx),
        lambda g, x, z: divide(g, add(1, x)),
        "log1p of a number below −1",
        lambda f: f < -1,
    )


def expm1(x) -> Tracked:
    return _unary(
        x,
        gmpy2.expm1,
        lambda fx, fz: fz + 1,
        lambda g, x, z: multiply(g, add(z, 1)),
    )


def tanh(x) -> Tracked:
    return _unary(
        x,
        gmpy2.tanh,
        lambda fx, fz: 1 - fz * fz,
        lambda g, x, z: multiply(g, subtract(1, multiply(z, z))),
    )


def sqrt(x) -> Tracked:
    return _unary(
        x,
        gmpy2.sqrt,
        lambda fx, fz: 0.5 / fz,
        lambda g, x, z: divide(g, multiply(2, z)),
        "√ of a negative number",
        lambda f: f < 0,
    )


def sigmoid(x) -> Tracked:
    return _unary(
        x,
        lambda t: 1 / (1 + gmpy2.exp(-t)),
        lambda fx, fz: fz * (1 - fz),
        lambda g, x, z: multiply(g, multiply(z, subtract(1, z))),
    )


def logaddexp(x, y) -> Tracked:
    """log(exp(x) + exp(y)); the weights exp(x − z), exp(y − z) are its partial derivatives."""
    x, y = _wrap(x), _wrap(y)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    v = np.frompyfunc(lambda s, t: gmpy2.log(gmpy2.exp(s) + gmpy2.exp(t)), 2, 1)(xb, yb)
    v = np.asarray(v, dtype=object)
    # The partial derivatives exp(x − z) and exp(y − z), in high precision (1 − w would lose
    # a weight below 1e-16 in float64).
    exp_minus = np.frompyfunc(lambda s, z: gmpy2.exp(s - z), 2, 1)
    wx_v, wy_v = (
        np.asarray(exp_minus(xb, v), dtype=object),
        np.asarray(exp_minus(yb, v), dtype=object),
    )
    wx, wy = _float(wx_v), _float(wy_v)
    fv = _float(v)
    fz = np.abs(fv)
    # max(x, y) + log1p(exp(−|x − y|)): a handful of roundings of the larger operand's size.
    larger = np.maximum(*np.broadcast_arrays(np.abs(x.f), np.abs(y.f)))
    e = wx * x.e + wy * y.e + LIBM_ULPS * (fz + larger + 2j)
    a = np.maximum(fz, wx * x.a + wy * y.a)

    def weight(w_v, w, operand_v, operand_e):
        # A backend computes exp(operand − z) from its own operand and z: their errors, the
        # subtraction's rounding, and the exponential's, all relative to w.
        gap = np.abs(_float(operand_v - v))
        e_w = w * (np.broadcast_to(operand_e, w.shape) + e + gap + 1j) + LIBM_ULPS * (w + 1j)
        return Tracked(w_v, e_w, w, f=w)

    return _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: multiply(g, weight(wx_v, wx, xb, x.e)),
        lambda g: multiply(g, weight(wy_v, wy, yb, y.e)),
        fv,
    )


def maximum(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    fx, fy = np.broadcast_arrays(x.f, y.f)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    v = np.where(fx >= fy, xb, yb)
    # At a tie torch and JAX both split the gradient evenly.
    wx = np.where(fx > fy, 1.0, np.where(fx == fy, 0.5, 0.0))
    return _binary(
        x,
        y,
        v,
        _emax(x.e, y.e),
        np.maximum(*np.broadcast_arrays(x.a, y.a)),
        lambda g: multiply(g, constant(wx)),
        lambda g: multiply(g, constant(1 - wx)),
    )


def minimum(x, y) -> Tracked:
    return negative(maximum(negative(x), negative(y)))


def where(condition, x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    c = np.asarray(condition, dtype=bool)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    return _binary(
        x,
        y,
        np.where(c, xb, yb),
        np.where(c, *np.broadcast_arrays(x.e, y.e)),
        np.where(c, *np.broadcast_arrays(x.a, y.a)),
        lambda g: multiply(g, constant(c.astype(np.float64))),
        lambda g: multiply(g, constant((~c).astype(np.float64))),
    )


def _axes(axis, ndim) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple | list) else (axis,)
    return tuple(a % ndim for a in axes)


def sum_(x, axis=None, keepdims=False) -> Tracked:
    """Σ of k terms: Higham's (k − 1)·Σ|terms| for every summation order."""
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    k = math.prod(x.shape[a] for a in axes) if axes else 1
    v = np.sum(x.v, axis=axes, keepdims=keepdims) if axes else x.v
    v = np.asarray(v, dtype=object)
    terms = np.sum(np.abs(x.f), axis=axes, keepdims=keepdims)
    e = np.sum(x.e, axis=axes, keepdims=keepdims) + max(k - 1, 0) * (terms + 1j)
    a = np.sum(x.a, axis=axes, keepdims=keepdims)
    shape = x.shape

    def backward(g):
        g_kept = reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return broadcast_to(g_kept, shape)

    return Tracked(v, e, a, (x,), (backward,))


def mean(x, axis=None, keepdims=False) -> Tracked:
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    k = math.prod(x.shape[a] for a in axes) if axes else 1
    # ÷k, or ×fl(1/k): at most two roundings of the result.
    total = sum_(x, axis=axis, keepdims=keepdims)
    v = np.asarray(total.v / k, dtype=object)
    f = _float(v)
    z = Tracked(
        v,
        total.e / k + 2 * _rounded(f),
        total.a / k,
        (total,),
        (lambda g: divide(g, k),),
        f,
    )
    return z


def broadcast_to(x, shape) -> Tracked:
    x = _wrap(x)
    return Tracked(
        np.broadcast_to(x.v, shape).copy(),
        np.broadcast_to(x.e, shape).copy(),
        np.broadcast_to(x.a, shape).copy(),
        (x,),
        (lambda g: _unbroadcast(g, x.shape),),
        np.broadcast_to(x.f, shape).copy(),
    )


def reshape(x, shape) -> Tracked:
    x = _wrap(x)
    return Tracked(
        x.v.reshape(shape),
        x.e.reshape(shape),
        x.a.reshape(shape),
        (x,),
        (lambda g: reshape(g, x.shape),),
        None if x._f is None else x._f.reshape(shape),
    )


def transpose(x) -> Tracked:
    x = _wrap(x)
    return Tracked(
        x.v.T,
        x.e.T,
        x.a.T,
        (x,),
        (lambda g: transpose(g),),
        None if x._f is None else x._f.T,
    )


def getitem(x, index) -> Tracked:
    x = _wrap(x)
    index = tuple(
        i.f.astype(int) if isinstance(i, Tracked) else i
        for i in (index if isinstance(index, tuple) else (index,))
    )

    def backward(g):
        v = _objects(np.zeros(x.shape))
        e, a = np.zeros(x.shape, dtype=np.complex128), np.zeros(x.shape)
        np.add.at(v, index, g.v)
        np.add.at(e, index, g.e)
        np.add.at(a, index, g.a)
        return Tracked(v, e, a)

    return Tracked(
        x.v[index],
        x.e[index],
        x.a[index],
        (x,),
        (backward,),
        None if x._f is None else x._f[index],
    )


def matmul(x, y) -> Tracked:
    """Products summed over the shared axis (vector·vector, matrix·vector, matrix·matrix)."""
    x, y = _wrap(x), _wrap(y)
    if 1 <= x.ndim <= 2 and 1 <= y.ndim <= 2 and x.shape[-1] == y.shape[0] and x.shape[-1]:
        return _dot(x, y)
    return _matmul_by_products(x, y)


def _matmul_by_products(x, y) -> Tracked:
    """matmul as the tracked products and their tracked sum (any number of batch axes)."""
    if x.ndim == 1 and y.ndim == 1:
        return sum_(multiply(x, y))
    if y.ndim == 1:
        return sum_(multiply(x, reshape(y, (1,) * (x.ndim - 1) + y.shape)), axis=-1)
    if x.ndim == 1:
        return sum_(multiply(reshape(x, x.shape + (1,)), y), axis=-2)
    products = multiply(reshape(x, x.shape + (1,)), reshape(y, y.shape[:-2] + (1,) + y.shape[-2:]))
    return sum_(products, axis=-2)


def _cdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b where one of them is complex (error coefficients) and the other real (absolute
    values): the real and imaginary parts each by a float64 matrix product."""
    part = np.ascontiguousarray
    if np.iscomplexobj(a):
        return _complex(np.dot(part(a.real), b), np.dot(part(a.imag), b))
    return _complex(np.dot(a, part(b.real)), np.dot(a, part(b.imag)))


def _complex(real: np.ndarray, imag: np.ndarray) -> np.ndarray:
    out = np.empty(np.shape(real), dtype=np.complex128)
    out.real, out.imag = real, imag
    return out


# --- Matrix products on float64 BLAS, exactly ---------------------------------------------
#
# A product of two object arrays costs one MPFR multiply and one add per term, some 150 ns
# each with Python's object protocol around them. Instead the operands are cut into integer
# limbs (fixed point per row of x and per column of y), the limbs multiplied by float64
# matrix products — exact, since every partial sum is an integer below 2**53 — and the
# products recombined as Python integers: each element of x @ y is its exact value, rounded
# once to the working precision.

# The most limbs one number may need (its row's spread of binary orders plus its significant
# bits): beyond, the product is computed element by element.
LIMB_LIMIT = 48


def _decompose(values: np.ndarray, floats: np.ndarray):
    """Each element of ``values`` (2-d, mpfr; ``floats`` their float64 roundings) as
    sign · mantissa · 2**low with an odd mantissa (0 for 0), and top = low + its bit length;
    the mantissas a uint64 array when every value is a float64 number, else Python ints.
    Returns (sign, mantissa, low, top, nonzero, width): width is the most bits a row spans."""
    rows, k = values.shape
    if np.array_equal(values, floats.astype(object)):  # float64 numbers: in numpy
        fraction, top = np.frexp(floats)  # |fraction| in [1/2, 1): 53 significant bits
        mantissa = np.abs(np.ldexp(fraction, 53)).astype(np.uint64)
        sign = np.sign(floats)
        trailing = _trailing_zeros(mantissa)
        mantissa >>= trailing.astype(np.uint64)
        low = top.astype(np.int64) - 53 + trailing
        top = top.astype(np.int64)
        nonzero = mantissa != 0
    else:
        sign, mantissa, low, top = [], [], [], []
        for value in values.ravel().tolist():
            m, e = value.as_mantissa_exp()
            m = abs(int(m))
            tz = gmpy2.bit_scan1(m) or 0
            m >>= tz
            sign.append(-1.0 if value < 0 else 1.0)
            mantissa.append(m)
            low.append(int(e) + tz)
            top.append(int(e) + tz + m.bit_length())
        sign = np.array(sign).reshape(rows, k)
        low = np.array(low, dtype=np.int64).reshape(rows, k)
        top = np.array(top, dtype=np.int64).reshape(rows, k)
        nonzero = np.array([m != 0 for m in mantissa]).reshape(rows, k)
    row_top = np.max(np.where(nonzero, top, np.iinfo(np.int64).min), axis=1, initial=0)
    row_low = np.min(np.where(nonzero, low, np.iinfo(np.int64).max), axis=1, initial=0)
    width = int(np.max(np.where(nonzero.any(axis=1), row_top - row_low, 0), initial=0))
    return sign, mantissa, low, row_top, nonzero, width


def _limbs(decomposed, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows in fixed point: values[r, k] = 2**scale[r] · Σ_l limbs[l, r, k]·2**(bits·l),
    the limbs signed integers of magnitude < 2**bits (float64)."""
    sign, mantissa, low, row_top, nonzero, width = decomposed
    rows, k = sign.shape
    count = max(-(-width // bits), 1)
    scale = np.where(nonzero.any(axis=1), row_top, 0) - count * bits
    shift = np.where(nonzero, low - scale[:, None], 0)  # ≥ 0: the value's bits start there
    if isinstance(mantissa, np.ndarray):
        limbs = np.empty((count, rows, k))
        mask = np.uint64(2**bits - 1)
        for limb in range(count):
            offset = limb * bits - shift  # where this limb starts, in the mantissa's bits
            right = (mantissa >> np.clip(offset, 0, 63).astype(np.uint64)) & mask
            left = (mantissa << np.clip(-offset, 0, 63).astype(np.uint64)) & mask
            part = np.where(offset >= 0, np.where(offset < 64, right, 0), left)
            limbs[limb] = np.where(-offset >= bits, 0, part)
        return limbs * sign, scale
    size = count * bits // 8
    raw = b"".join(
        (m << s).to_bytes(size, "little") for m, s in zip(mantissa, shift.ravel().tolist())
    )
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(rows * k, count, bits // 8)
    limbs = np.zeros((rows * k, count))
    for i in range(bits // 8):
        limbs += octets[:, :, i] * float(256**i)
    return limbs.T.reshape(count, rows, k) * sign, scale


def _trailing_zeros(m: np.ndarray) -> np.ndarray:
    """The number of trailing zero bits of each uint64 (0 for 0)."""
    lowest = m & (~m + np.uint64(1))  # the lowest set bit
    return np.where(m == 0, 0, np.log2(np.maximum(lowest, 1)).astype(np.int64))


def _exact_matmul(xv, xf, yv, yf) -> np.ndarray | None:
    """x @ y for 2-d object arrays of finite mpfr (xf, yf: their float64 roundings), each
    element the exact sum of the exact products, rounded once; None where the limbs do not
    fit (the caller multiplies element by element)."""
    k = xv.shape[1]
    if not (np.isfinite(xf).all() and np.isfinite(yf).all()):
        return None
    left, right = _decompose(xv, xf), _decompose(yv.T, yf.T)
    # The widest limbs (24, 16 or 8 bits) for which one digit of the product — the sum over
    # the limb pairs l + m = d and over k — stays below 2**53 in every order: float64 matrix
    # products compute it exactly.
    for bits in (24, 16, 8):
        n_x, n_y = (max(-(-side[-1] // bits), 1) for side in (left, right))
        if min(n_x, n_y) * k * (2**bits - 1) ** 2 < 2**53:
            break
    else:
        return None
    if max(n_x, n_y) > LIMB_LIMIT:
        return None
    (x_limbs, x_scale), (y_limbs, y_scale) = _limbs(left, bits), _limbs(right, bits)
    rows, columns = x_limbs.shape[1], y_limbs.shape[1]
    digits = n_x + n_y - 1
    # Digit d of the product: Σ over l + m = d of x_limbs[l] @ y_limbs[m]ᵀ, one matrix
    # product of the limbs side by side.
    sums = np.empty((digits, rows, columns), dtype=np.int64)
    for d in range(digits):
        pairs = range(max(0, d - n_y + 1), min(d, n_x - 1) + 1)
        x_side = np.concatenate([x_limbs[m] for m in pairs], axis=1)
        y_side = np.concatenate([y_limbs[d - m] for m in pairs], axis=1)
        sums[d] = x_side @ y_side.T
    # Carry into base-2**bits digits (floor division: the digits are ≥ 0, the carry signed),
    # then each element's integer from its bytes: digits little-endian, the carry on top in
    # two's complement.
    carry = np.zeros((rows, columns), dtype=np.int64)
    mask = np.int64(2**bits - 1)
    octets = bits // 8
    size = rows * columns
    buffer = np.empty((size, digits * octets + 8), dtype=np.uint8)
    for d in range(digits):
        total = sums[d] + carry
        digit = (total & mask).astype("<u4").reshape(size, 1)
        buffer[:, d * octets : (d + 1) * octets] = digit.view(np.uint8)[:, :octets]
        carry = total >> bits
    buffer[:, digits * octets :] = carry.astype("<i8").reshape(size, 1).view(np.uint8)
    raw, width = buffer.tobytes(), buffer.shape[1]
    integers = np.array(
        [
            int.from_bytes(raw[i : i + width], "little", signed=True)
            for i in range(0, size * width, width)
        ],
        dtype=object,
    )
    # 0 + n rounds once; ×2**e is exact (and ten times faster than mul_2exp).
    exponents, which = np.unique(x_scale[:, None] + y_scale[None, :], return_inverse=True)
    powers = np.array([gmpy2.mul_2exp(_ONE, e) for e in exponents.tolist()], dtype=object)
    return ((integers + _ZERO) * powers[which.ravel()]).reshape(rows, columns)


def _dot(x: Tracked, y: Tracked) -> Tracked:
    """x @ y for 1-d and 2-d operands with k ≥ 1 shared terms, as one node.

    The value is each element's exact sum of exact products, rounded once (``_exact_matmul``)
    — as close as the tracked products and their sum come, or closer; where the limbs do not
    fit, ``np.dot`` of the object arrays, which is those products and sum, in order. The
    companions are what those elementwise rules add up, as float64 matrix products: each
    product xᵢₖ·yₖⱼ contributes e(x)·|y| + |x|·e(y) + |x·y| + 1j (its own rounding), and the
    sum of k of them (k − 1)·(Σ|x·y| + 1j) — together e(x)@|y| + |x|@e(y) + k·(|x|@|y|) +
    (2k − 1)·1j; the magnitude is a(x)@a(y).
    """
    k = x.shape[-1]
    v = _exact_matmul(
        x.v.reshape(-1, k), x.f.reshape(-1, k), y.v.reshape(k, -1), y.f.reshape(k, -1)
    )
    if v is None:  # the elementwise products and sum, in order
        v = np.dot(x.v, y.v)
        v = v if isinstance(v, np.ndarray) else np.array(v, dtype=object)
    else:
        v = v.reshape(x.shape[:-1] + y.shape[1:])
    fx, fy = np.abs(x.f), np.abs(y.f)
    e = _cdot(x.e, fy) + _cdot(fx, y.e) + k * np.dot(fx, fy) + (2 * k - 1) * 1j
    a = np.dot(x.a, y.a)

    def dx(g: Tracked) -> Tracked:  # ∂/∂x: g @ yᵀ, or g ⊗ y where y is a vector
        if y.ndim == 1:
            return multiply(reshape(g, g.shape + (1,)), y) if x.ndim == 2 else multiply(g, y)
        return _dot(g, transpose(y))

    def dy(g: Tracked) -> Tracked:  # ∂/∂y: xᵀ @ g, or x ⊗ g where x is a vector
        if x.ndim == 1:
            return multiply(reshape(x, x.shape + (1,)), g) if y.ndim == 2 else multiply(g, x)
        return _dot(transpose(x), g)

    return Tracked(v, e, a, (x, y), (dx, dy))


def square(x) -> Tracked:
    return multiply(x, x)


class Namespace:
    """The ``xp`` a loss sees when the reference evaluates it (an array API subset)."""

    float16 = np.float16
    float32 = np.float32
    float64 = np.float64
    int32 = np.int32
    int64 = np.int64
    pi = math.pi
    e = math.e
    inf = math.inf

    add, subtract, multiply, divide = (
        staticmethod(add),
        staticmethod(subtract),
        staticmethod(multiply),
        staticmethod(divide),
    )
    negative = staticmethod(negative)
    abs = staticmethod(abs_)
    exp, log, log1p, expm1 = (
        staticmethod(exp),
        staticmethod(log),
        staticmethod(log1p),
        staticmethod(expm1),
    )
    tanh, sqrt, square = staticmethod(tanh), staticmethod(sqrt), staticmethod(square)
    logaddexp, maximum, minimum = (
        staticmethod(logaddexp),
        staticmethod(maximum),
        staticmethod(minimum),
    )
    where, matmul, reshape = staticmethod(where), staticmethod(matmul), staticmethod(reshape)
    sum, mean = staticmethod(sum_), staticmethod(mean)
    pow = staticmethod(pow_)

    @staticmethod
    def astype(x, dtype, copy=True):
        return x.astype(dtype) if isinstance(x, Tracked) else np.asarray(x).astype(dtype)

    @staticmethod
    def asarray(x, dtype=None):
        return x if isinstance(x, Tracked) else constant(x)

    @staticmethod
    def arange(*args, **kwargs):
        return np.arange(*args)

    @staticmethod
    def zeros(shape, dtype=None):
        return constant(np.zeros(shape))

    @staticmethod
    def ones(shape, dtype=None):
        return constant(np.ones(shape))

    @staticmethod
    def max(x, axis=None, keepdims=False):
        """The largest element; at a tie the gradient is split evenly (as torch.amax and JAX)."""
        x = _wrap(x)
        f = x.f
        axes = _axes(axis, x.ndim)
        mask = f == np.max(f, axis=axes, keepdims=True)
        first = mask & (np.cumsum(mask.reshape(-1)).reshape(mask.shape) > 0)  # any tie counts
        weights = first / np.sum(first, axis=axes, keepdims=True)
        return sum_(multiply(x, constant(weights)), axis=axis, keepdims=keepdims)

    def __getattr__(self, name: str):
        raise UnsupportedOperation(f"xp.{name}")


xp = Namespace()


def value_and_grad(
    loss: Callable, params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[Tracked, dict[str, Tracked]]:
    """Evaluate ``loss(params, X, y, xp)`` and its gradient in high precision, tracked."""
    with _working_precision(), _one_blas_thread(), np.errstate(all="ignore"):
        leaves = {k: leaf(v) for k, v in params.items()}
        for node in leaves.values():
            node.requires = True  # gradients flow only towards the parameters
        _recording[0] = True
        try:
            out = loss(leaves, leaf(X), leaf(y), xp)
        except UnsupportedOperation:
            raise
        except ArithmeticError as exc:  # MPFR: log(0), 1/0, 0/0 …
            raise NotDifferentiable(_arithmetic(exc)) from exc
        except (TypeError, AttributeError, ValueError, IndexError) as exc:
            raise UnsupportedOperation(f"{type(exc).__name__}: {exc}") from exc
        out = _wrap(out)
        if out.size != 1:
            raise ValueError(f"the loss has shape {out.shape}, expected a scalar")
        out = reshape(out, ())
        order = _topological(out)
        _recording[0] = False
        try:
            grads: dict[int, Tracked] = {id(out): constant(1.0)}
            for node in reversed(order):
                g = grads.pop(id(node), None)
                if g is None:
                    continue
                for parent, rule in zip(node.parents, node.backward):
                    if not parent.requires:  # X, y, constants: no gradient needed
                        continue
                    try:
                        contribution = rule(g)
                    except ArithmeticError as exc:  # a slope that is infinite here
                        raise NotDifferentiable(_arithmetic(exc)) from exc
                    seen = grads.get(id(parent))
                    grads[id(parent)] = contribution if seen is None else add(seen, contribution)
                if any(node is leaf_node for leaf_node in leaves.values()):
                    grads[id(node)] = g  # keep the leaves' gradients
        finally:
            _recording[0] = True
        result = {k: grads[id(v)] if id(v) in grads else _zeros(v.shape) for k, v in leaves.items()}
        for name, node in (("the loss", out), *result.items()):
            if not all(gmpy2.is_finite(value) for value in node.v.ravel()):
                where = "the loss" if node is out else f"the gradient of {name}"
                raise NotDifferentiable(f"{where} is not finite")
        return out, result


def _zeros(shape: tuple[int, ...]) -> Tracked:
    """The gradient of a parameter the loss does not depend on."""
    return Tracked(_objects(np.zeros(shape)), np.zeros(shape), np.zeros(shape))


def _arithmetic(exc: ArithmeticError) -> str:
    if isinstance(exc, gmpy2.InvalidOperationError):
        detail = "an invalid operation (0/0, 0·∞, ∞ − ∞)"
    else:
        detail = str(exc) or "division by zero"
    return f"{detail} (a log of 0, a 1/0, or an infinite slope such as √ at 0)"


def _topological(out: Tracked) -> list[Tracked]:
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node.parents if id(p) not in seen)
    return order


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
