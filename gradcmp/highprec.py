"""The reference for any loss: high-precision reverse-mode autodiff with a running error bound.

A loss written once against ``xp`` runs here on arrays of ``mpmath`` numbers (200-bit
significands, about 60 digits), so its value and gradient come out to far more than 30
significant digits. Each array also carries, per element, two float64 companions:

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction

import mpmath
import numpy as np

PRECISION_BITS = 200
# Roundings charged to one transcendental function (exp, log, tanh, …): vectorised libm
# implementations (SLEEF, XLA's, Eigen's) promise a few ulps, not correct rounding.
LIBM_ULPS = 4


class UnsupportedOperation(Exception):
    """The loss used something the high-precision reference cannot evaluate."""


class NotDifferentiable(Exception):
    """The loss or its gradient is not finite at these parameters (log 0, 1/0, √0's slope)."""


def _to_mpf(x) -> mpmath.mpf:
    if isinstance(x, Fraction):  # a decimal as written: exact up to the working precision
        return mpmath.mpf(x.numerator) / x.denominator
    return mpmath.mpf(x)


def _objects(values) -> np.ndarray:
    """Values (floats, or Fractions in an object array) as an object array of mpf."""
    array = np.asarray(values)
    if array.dtype != object:
        array = array.astype(np.float64)
    return np.asarray(np.frompyfunc(_to_mpf, 1, 1)(array), dtype=object)


def _float(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object).astype(np.float64)


def _rounded(v) -> np.ndarray:
    """The error of rounding a result ``v``: |v|·u, and one possible underflow (imaginary)."""
    return np.abs(_float(v)) + 1j


def _emax(a, b) -> np.ndarray:
    a, b = np.broadcast_arrays(a, b)
    return np.maximum(a.real, b.real) + 1j * np.maximum(a.imag, b.imag)


# Below this an input may be subnormal (in float16, whose smallest normal is the largest of
# the dtypes) and flushed to zero (DAZ): one underflow.
SMALLEST_NORMAL = 2.0**-14


def _exact_in_float32(value: float) -> bool:
    return float(np.float32(value)) == value


class Tracked:
    """High-precision values ``v`` with error coefficients ``e`` and magnitudes ``a``."""

    __array_ufunc__ = None  # numpy operands defer to our operators (x * array → __rmul__)

    def __init__(self, v, e, a, parents=(), backward=()):
        # numpy turns 0-d object results into bare scalars; keep everything an array.
        self.v = v if isinstance(v, np.ndarray) else np.array(v, dtype=object)
        self.e = np.asarray(e, dtype=np.complex128)
        self.a = np.asarray(a, dtype=np.float64)
        self.parents = parents if _recording[0] else ()
        self.backward = backward if _recording[0] else ()

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
    return _float(x.v) if isinstance(x, Tracked) else np.asarray(x, dtype=np.float64)


def constant(value) -> Tracked:
    """A constant of the loss (``2``, ``0.5``, an index array): exact where float32 holds it,
    else charged one rounding (the framework converts it to its dtype)."""
    array = np.asarray(value, dtype=np.float64)
    exact = np.vectorize(_exact_in_float32, otypes=[bool])(array) if array.size else array
    return Tracked(_objects(array), np.where(exact, 0.0, np.abs(array)), np.abs(array))


def leaf(values) -> Tracked:
    """An input: the values a backend receives (floats), or as written (Fractions); no error."""
    array = np.asarray(values)
    magnitude = np.abs(array.astype(np.float64))
    flushable = (magnitude > 0) & (magnitude < SMALLEST_NORMAL)
    return Tracked(_objects(array), 1j * flushable, magnitude)


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


def _binary(x, y, v, e, a, dx: Callable, dy: Callable) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    return Tracked(
        v,
        e,
        a,
        (x, y),
        (lambda g: _unbroadcast(dx(g), x.shape), lambda g: _unbroadcast(dy(g), y.shape)),
    )


def add(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v + y.v
    return _binary(x, y, v, x.e + y.e + _rounded(v), x.a + y.a, lambda g: g, lambda g: g)


def subtract(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v - y.v
    return _binary(x, y, v, x.e + y.e + _rounded(v), x.a + y.a, lambda g: g, lambda g: negative(g))


def multiply(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v * y.v
    fx, fy = np.abs(_float(x.v)), np.abs(_float(y.v))
    e = x.e * fy + y.e * fx + _rounded(v)
    return _binary(x, y, v, e, x.a * y.a, lambda g: multiply(g, y), lambda g: multiply(g, x))


def divide(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v / y.v
    fx, fy = np.abs(_float(x.v)), np.abs(_float(y.v))
    with np.errstate(divide="ignore", invalid="ignore"):
        e = x.e / fy + y.e * fx / (fy * fy) + _rounded(v)
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
    )


def negative(x) -> Tracked:
    x = _wrap(x)
    return Tracked(-x.v, x.e, x.a, (x,), (lambda g: negative(g),))


def abs_(x) -> Tracked:
    x = _wrap(x)
    sign = np.sign(_float(x.v))
    return Tracked(np.abs(x.v), x.e, x.a, (x,), (lambda g: multiply(g, constant(sign)),))


def pow_(x, power) -> Tracked:
    x = _wrap(x)
    if isinstance(power, Tracked):
        raise UnsupportedOperation("a tracked exponent")
    p = float(power)
    if p == 2:
        return multiply(x, x)
    v = _elementwise(lambda t: t**p, x.v)
    fx = np.abs(_float(x.v))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.abs(p * fx ** (p - 1))
    e = slope * x.e + LIBM_ULPS * _rounded(v)
    return Tracked(
        v,
        e,
        np.maximum(np.abs(_float(v)), slope * x.a),
        (x,),
        (lambda g: multiply(g, multiply(constant(p), pow_(x, p - 1))),),
    )


def _elementwise(fn, values: np.ndarray) -> np.ndarray:
    return (
        np.frompyfunc(fn, 1, 1)(values) if values.shape else np.array(fn(values[()]), dtype=object)
    )


def _unary(x, fn, slope_fn, backward) -> Tracked:
    """z = fn(x) with |dz/dx| = slope_fn(x, z) (floats) and backward(g, x, z) → Tracked; the
    backward rule reuses the forward node z itself, so its forward error counts there too."""
    x = _wrap(x)
    v = _elementwise(fn, x.v)
    fx, fz = _float(x.v), _float(v)
    slope = np.abs(slope_fn(fx, fz))
    e = slope * x.e + LIBM_ULPS * (np.abs(fz) + 1j)
    a = np.maximum(np.abs(fz), slope * x.a)
    z = Tracked(v, e, a, (x,), ())
    if _recording[0]:
        z.backward = (lambda g: backward(g, x, z),)
    return z


def exp(x) -> Tracked:
    return _unary(x, mpmath.exp, lambda fx, fz: fz, lambda g, x, z: multiply(g, z))


def log(x) -> Tracked:
    return _unary(x, mpmath.log, lambda fx, fz: 1 / fx, lambda g, x, z: divide(g, x))


def log1p(x) -> Tracked:
    return _unary(
        x, mpmath.log1p, lambda fx, fz: 1 / (1 + fx), lambda g, x, z: divide(g, add(1, x))
    )


def expm1(x) -> Tracked:
    return _unary(
        x,
        mpmath.expm1,
        lambda fx, fz: fz + 1,
        lambda g, x, z: multiply(g, add(z, 1)),
    )


def tanh(x) -> Tracked:
    return _unary(
        x,
        mpmath.tanh,
        lambda fx, fz: 1 - fz * fz,
        lambda g, x, z: multiply(g, subtract(1, multiply(z, z))),
    )


def sqrt(x) -> Tracked:
    return _unary(
        x,
        mpmath.sqrt,
        lambda fx, fz: 0.5 / fz,
        lambda g, x, z: divide(g, multiply(2, z)),
    )


def sigmoid(x) -> Tracked:
    return _unary(
        x,
        lambda t: 1 / (1 + mpmath.exp(-t)),
        lambda fx, fz: fz * (1 - fz),
        lambda g, x, z: multiply(g, multiply(z, subtract(1, z))),
    )


def logaddexp(x, y) -> Tracked:
    """log(exp(x) + exp(y)); the weights exp(x − z), exp(y − z) are its partial derivatives."""
    x, y = _wrap(x), _wrap(y)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    v = np.frompyfunc(lambda s, t: mpmath.log(mpmath.exp(s) + mpmath.exp(t)), 2, 1)(xb, yb)
    v = np.asarray(v, dtype=object)
    # The partial derivatives exp(x − z) and exp(y − z), in high precision (1 − w would lose
    # a weight below 1e-16 in float64).
    exp_minus = np.frompyfunc(lambda s, z: mpmath.exp(s - z), 2, 1)
    wx_v, wy_v = (
        np.asarray(exp_minus(xb, v), dtype=object),
        np.asarray(exp_minus(yb, v), dtype=object),
    )
    wx, wy = _float(wx_v), _float(wy_v)
    fz = np.abs(_float(v))
    # max(x, y) + log1p(exp(−|x − y|)): a handful of roundings of the larger operand's size.
    larger = np.maximum(np.abs(_float(xb)), np.abs(_float(yb)))
    e = wx * x.e + wy * y.e + LIBM_ULPS * (fz + larger + 2j)
    a = np.maximum(fz, wx * x.a + wy * y.a)

    def weight(w_v, w, operand_v, operand_e):
        # A backend computes exp(operand − z) from its own operand and z: their errors, the
        # subtraction's rounding, and the exponential's, all relative to w.
        gap = np.abs(_float(operand_v - v))
        e_w = w * (np.broadcast_to(operand_e, w.shape) + e + gap + 1j) + LIBM_ULPS * (w + 1j)
        return Tracked(w_v, e_w, w)

    return _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: multiply(g, weight(wx_v, wx, xb, x.e)),
        lambda g: multiply(g, weight(wy_v, wy, yb, y.e)),
    )


def maximum(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    fx, fy = np.broadcast_arrays(_float(x.v), _float(y.v))
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
    terms = np.sum(np.abs(_float(x.v)), axis=axes, keepdims=keepdims)
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
    v = total.v / k
    z = Tracked(
        np.asarray(v, dtype=object),
        total.e / k + 2 * _rounded(v),
        total.a / k,
        (total,),
        (lambda g: divide(g, k),),
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
    )


def reshape(x, shape) -> Tracked:
    x = _wrap(x)
    return Tracked(
        x.v.reshape(shape),
        x.e.reshape(shape),
        x.a.reshape(shape),
        (x,),
        (lambda g: reshape(g, x.shape),),
    )


def transpose(x) -> Tracked:
    x = _wrap(x)
    return Tracked(x.v.T, x.e.T, x.a.T, (x,), (lambda g: transpose(g),))


def getitem(x, index) -> Tracked:
    x = _wrap(x)
    index = tuple(
        i.v.astype(np.float64).astype(int) if isinstance(i, Tracked) else i
        for i in (index if isinstance(index, tuple) else (index,))
    )

    def backward(g):
        v = _objects(np.zeros(x.shape))
        e, a = np.zeros(x.shape, dtype=np.complex128), np.zeros(x.shape)
        np.add.at(v, index, g.v)
        np.add.at(e, index, g.e)
        np.add.at(a, index, g.a)
        return Tracked(v, e, a)

    return Tracked(x.v[index], x.e[index], x.a[index], (x,), (backward,))


def matmul(x, y) -> Tracked:
    """Products summed over the shared axis (vector·vector, matrix·vector, matrix·matrix)."""
    x, y = _wrap(x), _wrap(y)
    if x.ndim == 1 and y.ndim == 1:
        return sum_(multiply(x, y))
    if y.ndim == 1:
        return sum_(multiply(x, reshape(y, (1,) * (x.ndim - 1) + y.shape)), axis=-1)
    if x.ndim == 1:
        return sum_(multiply(reshape(x, x.shape + (1,)), y), axis=-2)
    products = multiply(reshape(x, x.shape + (1,)), reshape(y, y.shape[:-2] + (1,) + y.shape[-2:]))
    return sum_(products, axis=-2)


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
        f = _float(x.v)
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
    with mpmath.workprec(PRECISION_BITS), np.errstate(all="ignore"):
        leaves = {k: leaf(v) for k, v in params.items()}
        _recording[0] = True
        try:
            out = loss(leaves, leaf(X), leaf(y), xp)
        except UnsupportedOperation:
            raise
        except ArithmeticError as exc:  # mpmath: log(0), 1/0 …
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
        zero = {
            k: Tracked(_objects(np.zeros(v.shape)), np.zeros(v.shape), np.zeros(v.shape))
            for k, v in leaves.items()
        }
        result = {k: grads.get(id(v), zero[k]) for k, v in leaves.items()}
        for name, node in (("the loss", out), *result.items()):
            if not all(mpmath.isfinite(value) for value in node.v.ravel()):
                where = "the loss" if node is out else f"the gradient of {name}"
                raise NotDifferentiable(f"{where} is not finite")
        return out, result


def _arithmetic(exc: ArithmeticError) -> str:
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
    """An mpmath number as the exact rational it is."""
    # (mpmath.mpf(value) would round an mpf to the default 53 bits; man_exp drops the sign.)
    number = value if isinstance(value, mpmath.mpf) else mpmath.mpf(value)
    sign, mantissa, exponent, _ = number._mpf_
    if not mantissa and exponent:  # ±inf or nan
        raise ValueError(f"the loss or its gradient is {number}")
    return (-1) ** sign * Fraction(mantissa) * Fraction(2) ** exponent
