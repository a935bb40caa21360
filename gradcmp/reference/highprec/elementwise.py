"""Arithmetic and the first elementary functions, element by element in MPFR.

Every elementary operation adds one rounding of its result (``|z|``) to the propagated
errors of its operands; a transcendental function adds ``LIBM_ULPS`` of them. Operands
broadcast numpy-style; a gradient comes back summed over the broadcast axes.
"""

from __future__ import annotations

from collections.abc import Callable

import gmpy2
import numpy as np

from . import remembered
from .shape import _unbroadcast
from .tracked import (
    LIBM_ULPS,
    REMEMBERED_SIZE,
    Tracked,
    UnsupportedOperation,
    _complex,
    _emax,
    _float,
    _mode,
    _recording,
    _rounded,
    _scale,
    _times,
    _wrap,
    constant,
)


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
    e = _times(x.e, fy) + _times(y.e, fx) + _rounded(f)
    a = _scale(x.a, y.a)
    return _binary(x, y, v, e, a, lambda g: multiply(g, y), lambda g: multiply(g, x), f)


def _over(e: np.ndarray, s) -> np.ndarray:
    """Error coefficients divided by a real ``s``, with 0/0 = 0 (an exact operand adds no
    error, even divided by 0: IEEE mode's 1/0)."""
    real, imag = e.real / s, e.imag / s
    if not (np.isfinite(s) & (s != 0)).all():
        real, imag = np.where(e.real == 0, 0.0, real), np.where(e.imag == 0, 0.0, imag)
    return _complex(real, imag)


def divide(x, y) -> Tracked:
    x, y = _wrap(x), _wrap(y)
    v = x.v / y.v
    f = _float(v)
    fx, fy = np.abs(x.f), np.abs(y.f)
    e = _over(x.e, fy) + _over(_times(y.e, fx), fy * fy) + _rounded(f)
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


def reciprocal(x) -> Tracked:
    return divide(1, x)


def square(x) -> Tracked:
    return multiply(x, x)


def negative(x) -> Tracked:
    x = _wrap(x)
    return Tracked(-x.v, x.e, x.a, (x,), (lambda g: negative(g),), -x.f)


def abs_(x) -> Tracked:
    x = _wrap(x)
    sign = np.sign(x.f)
    return Tracked(
        np.abs(x.v), x.e, x.a, (x,), (lambda g: multiply(g, constant(sign)),), np.abs(x.f)
    )


def _elementwise(fn, values: np.ndarray, complex_result: str = "", outside=None) -> np.ndarray:
    """fn on every element. Where the result is not real (√ or log of a negative number: an
    element for which ``outside(float64 values)`` holds, or one MPFR finds invalid) the
    reference has no value to offer: UnsupportedOperation (the float64 fallback reports it).
    That is checked first, so a complex value elsewhere wins over a log 0 (NotDifferentiable).
    In IEEE mode such an element is NaN instead."""
    if not _mode.ieee and outside is not None and values.size and np.any(outside(_float(values))):
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
    if x.v.size < REMEMBERED_SIZE or not remembered.active() or fn.__name__ == "<lambda>":
        # (A lambda is made afresh at each call: its results would never be found again.)
        v = _elementwise(fn, x.v, complex_result, outside)
    else:
        # The same function of the same values, remembered within a reference. IEEE mode
        # (a port's side) and the generic loss's mode differ only where a result is not
        # finite (an invalid operation or a pole traps in one and is NaN or ∞ in the other):
        # results that are all finite serve both (remembered.context_key).
        v = remembered.once(
            ("elementwise", fn, x.v.shape, remembered.context_key(), hash(x.f.tobytes())),
            (x.v.copy(),),
            lambda seen: remembered.same_values(seen[0], x.v),
            lambda: _elementwise(fn, x.v, complex_result, outside),
            keep=lambda values: bool(np.isfinite(_float(values)).all()),
        )
    fx, fz = x.f, _float(v)
    slope = np.abs(slope_fn(fx, fz))
    e = _times(x.e, slope) + LIBM_ULPS * _rounded(fz)
    a = np.maximum(np.abs(fz), _scale(slope, x.a))
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


def _logistic(t):
    return 1 / (1 + gmpy2.exp(-t))


def sigmoid(x) -> Tracked:
    return _unary(
        x,
        _logistic,
        lambda fx, fz: fz * (1 - fz),
        lambda g, x, z: multiply(g, multiply(z, subtract(1, z))),
    )


def logaddexp(x, y) -> Tracked:
    """log(exp(x) + exp(y)); the weights exp(x − z), exp(y − z) are its partial derivatives."""
    x, y = _wrap(x), _wrap(y)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    v = np.asarray(np.frompyfunc(_logaddexp, 2, 1)(xb, yb), dtype=object)
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
    e = _times(x.e, wx) + _times(y.e, wy) + LIBM_ULPS * (_rounded(fz) + _rounded(larger))
    a = np.maximum(fz, _scale(wx, x.a) + _scale(wy, y.a))

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


def _logaddexp(s, t):
    """log(eˢ + eᵗ) as max + log1p(e^−|s − t|): log(eˢ + eᵗ) directly would lose the smaller
    term's digits in the sum (softplus(−30) = log(1 + 9e-14) keeps only 47 digits)."""
    if s == t:  # ±∞ too, where s − t is NaN
        return s + gmpy2.const_log2()
    larger, gap = (s, t - s) if s > t else (t, s - t)
    return larger + gmpy2.log1p(gmpy2.exp(gap))


def maximum(x, y) -> Tracked:
    """The larger of each pair. A backend's max is exact, so its error is at most the larger
    of the operands' errors (either may be the one it picks near a tie)."""
    x, y = _wrap(x), _wrap(y)
    fx, fy = np.broadcast_arrays(x.f, y.f)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    take_x = fx >= fy
    v = np.where(take_x, xb, yb)
    e = _emax(x.e, y.e)
    a = np.maximum(*np.broadcast_arrays(x.a, y.a))
    if _mode.ieee:
        v, e, a = _ieee_selection(take_x, (x, fx, xb), (y, fy, yb), v, e, a)
    # At a tie torch and JAX both split the gradient evenly.
    wx = np.where(fx > fy, 1.0, np.where(fx == fy, 0.5, 0.0))
    return _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: multiply(g, constant(wx)),
        lambda g: multiply(g, constant(1 - wx)),
    )


def _ieee_selection(take_x, first, second, v, e, a):
    """IEEE semantics of a max/min: a NaN operand gives NaN (as torch.maximum, jnp.maximum);
    where the branch not taken is infinite and the one taken finite (clamp(log p, −100) at
    p = 0), the result has the taken branch's companions, not the infinite bound of the other."""
    x, fx, xb = first
    y, fy, yb = second
    v = np.where(np.isnan(fx) | np.isnan(fy), gmpy2.nan(), v)
    finite_x, finite_y = np.isfinite(fx), np.isfinite(fy)
    alone = np.where(take_x, finite_x & ~finite_y, finite_y & ~finite_x)
    taken_e = np.where(take_x, *np.broadcast_arrays(x.e, y.e))
    taken_a = np.where(take_x, *np.broadcast_arrays(x.a, y.a))
    return v, np.where(alone, taken_e, e), np.where(alone, taken_a, a)


def minimum(x, y) -> Tracked:
    return negative(maximum(negative(x), negative(y)))


def clip(x, min=None, max=None) -> Tracked:
    """x limited to [min, max] (either may be None): maximum, then minimum, so at x equal to a
    bound the gradient is split evenly between x and the bound (as jnp.clip; torch.clamp gives
    it all to x)."""
    out = _wrap(x)
    if min is not None:
        out = maximum(out, min)
    if max is not None:
        out = minimum(out, max)
    return out


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
