"""Powers and the other elementary functions: error function, trigonometric, hyperbolic and
their inverses, other bases, steps.

Each value is MPFR's, correctly rounded; each function adds ``LIBM_ULPS`` roundings of its
result to its operands' errors times its slope (the slope taken in float64: it only scales
an error). A real function outside its domain (arcsin 2) raises UnsupportedOperation, or is
NaN in IEEE mode; a pole (arctanh 1) is an ArithmeticError (NotDifferentiable), or ±∞.
"""

from __future__ import annotations

import gmpy2
import numpy as np

from .elementwise import (
    _binary,
    _elementwise,
    _unary,
    add,
    divide,
    exp,
    log,
    logaddexp,
    multiply,
    negative,
    sqrt,
    subtract,
    where,
)
from .tracked import (
    LIBM_ULPS,
    Tracked,
    UnsupportedOperation,
    _float,
    _mode,
    _rounded,
    _scale,
    _times,
    _wrap,
    _zeros,
    constant,
)


def _mp_constant(make) -> Tracked:
    """A constant the framework stores rounded to its dtype (2/√π, ln 2): its value at the
    working precision, charged one rounding."""
    value = make()
    f = _float(np.array(value, dtype=object))
    return Tracked(np.array(value, dtype=object), np.abs(f), np.abs(f), f=f)


def _two_over_sqrt_pi() -> Tracked:
    return _mp_constant(lambda: 2 / gmpy2.sqrt(gmpy2.const_pi()))


def _ln2() -> Tracked:
    return _mp_constant(gmpy2.const_log2)


def _ln10() -> Tracked:
    return _mp_constant(lambda: gmpy2.log(10))


# --- Powers -----------------------------------------------------------------------------------


def pow_(x, power) -> Tracked:
    """x ** power: a constant power (the usual case), or an array or tracked one."""
    if isinstance(power, Tracked) or np.ndim(power) > 0:
        return _power(x, power)
    x = _wrap(x)
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
    slope = np.abs(p * fx ** (p - 1))
    e = _times(x.e, slope) + LIBM_ULPS * _rounded(fv)
    return Tracked(
        v,
        e,
        np.maximum(np.abs(fv), _scale(slope, x.a)),
        (x,),
        (lambda g: multiply(g, multiply(constant(p), pow_(x, p - 1))),),
        fv,
    )


def _power(x, y) -> Tracked:
    """x ** y with both operands arrays: ∂/∂x = y·x^(y−1), ∂/∂y = x^y·log x."""
    x, y = _wrap(x), _wrap(y)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    fx, fy = np.broadcast_arrays(x.f, y.f)
    if not _mode.ieee and np.any((fx < 0) & (fy != np.round(fy))):
        raise UnsupportedOperation("a fractional power of a negative number (a complex value)")
    v = np.asarray(np.frompyfunc(lambda s, t: s**t, 2, 1)(xb, yb), dtype=object)
    fz = _float(v)
    slope_x = np.abs(fy * np.abs(fx) ** (fy - 1))
    slope_y = np.abs(fz * np.log(np.abs(fx)))
    e = _times(x.e, slope_x) + _times(y.e, slope_y) + LIBM_ULPS * _rounded(fz)
    a = np.maximum(np.abs(fz), _scale(slope_x, x.a) + _scale(slope_y, y.a))
    # (the rules read z when they run: the node assigned below)
    z = _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: multiply(g, multiply(y, _power(x, subtract(y, 1)))),
        lambda g: multiply(g, multiply(z, log(x))),
        fz,
    )
    return z


# --- Error function, trigonometric and hyperbolic functions -----------------------------------


def erf(x) -> Tracked:
    return _unary(
        x,
        gmpy2.erf,
        lambda fx, fz: 1.1283791670955126 * np.exp(-fx * fx),  # 2/√π·e^(−x²)
        lambda g, x, z: multiply(g, multiply(_two_over_sqrt_pi(), exp(negative(x * x)))),
    )


def erfc(x) -> Tracked:
    return _unary(
        x,
        gmpy2.erfc,
        lambda fx, fz: 1.1283791670955126 * np.exp(-fx * fx),
        lambda g, x, z: negative(multiply(g, multiply(_two_over_sqrt_pi(), exp(negative(x * x))))),
    )


def sin(x) -> Tracked:
    return _unary(x, gmpy2.sin, lambda fx, fz: np.cos(fx), lambda g, x, z: multiply(g, cos(x)))


def cos(x) -> Tracked:
    return _unary(
        x, gmpy2.cos, lambda fx, fz: np.sin(fx), lambda g, x, z: negative(multiply(g, sin(x)))
    )


def tan(x) -> Tracked:
    return _unary(
        x,
        gmpy2.tan,
        lambda fx, fz: 1 + fz * fz,
        lambda g, x, z: multiply(g, add(1, multiply(z, z))),
    )


def sinh(x) -> Tracked:
    return _unary(x, gmpy2.sinh, lambda fx, fz: np.cosh(fx), lambda g, x, z: multiply(g, cosh(x)))


def cosh(x) -> Tracked:
    return _unary(x, gmpy2.cosh, lambda fx, fz: np.sinh(fx), lambda g, x, z: multiply(g, sinh(x)))


def _outside_unit(f):
    return np.abs(f) > 1


def arcsin(x) -> Tracked:
    return _unary(
        x,
        gmpy2.asin,
        lambda fx, fz: 1 / np.sqrt(1 - fx * fx),
        lambda g, x, z: divide(g, sqrt(subtract(1, x * x))),
        "arcsin of a number beyond ±1",
        _outside_unit,
    )


def arccos(x) -> Tracked:
    return _unary(
        x,
        gmpy2.acos,
        lambda fx, fz: 1 / np.sqrt(1 - fx * fx),
        lambda g, x, z: negative(divide(g, sqrt(subtract(1, x * x)))),
        "arccos of a number beyond ±1",
        _outside_unit,
    )


def arctan(x) -> Tracked:
    return _unary(
        x,
        gmpy2.atan,
        lambda fx, fz: 1 / (1 + fx * fx),
        lambda g, x, z: divide(g, add(1, x * x)),
    )


def arcsinh(x) -> Tracked:
    return _unary(
        x,
        gmpy2.asinh,
        lambda fx, fz: 1 / np.hypot(1, fx),
        lambda g, x, z: divide(g, sqrt(add(x * x, 1))),
    )


def arccosh(x) -> Tracked:
    return _unary(
        x,
        gmpy2.acosh,
        lambda fx, fz: 1 / np.sqrt((fx - 1) * (fx + 1)),
        lambda g, x, z: divide(g, sqrt(subtract(x * x, 1))),  # as torch: (x² − 1)^(−½)
        "arccosh of a number below 1",
        lambda f: f < 1,
    )


def arctanh(x) -> Tracked:
    return _unary(
        x,
        gmpy2.atanh,
        lambda fx, fz: 1 / (1 - fx * fx),
        lambda g, x, z: divide(g, subtract(1, x * x)),
        "arctanh of a number beyond ±1",
        _outside_unit,
    )


def arctan2(y, x) -> Tracked:
    """The angle of the point (x, y): ∂/∂y = x/(x² + y²), ∂/∂x = −y/(x² + y²)."""
    y, x = _wrap(y), _wrap(x)
    yb, xb = np.broadcast_arrays(y.v, x.v)
    v = np.asarray(np.frompyfunc(gmpy2.atan2, 2, 1)(yb, xb), dtype=object)
    fz = _float(v)
    ay, ax = np.abs(y.f), np.abs(x.f)
    r = np.hypot(ay, ax)  # r² would underflow or overflow long before the slopes do
    slope_y, slope_x = (ax / r) / r, (ay / r) / r
    e = _times(y.e, slope_y) + _times(x.e, slope_x) + LIBM_ULPS * _rounded(fz)
    a = np.maximum(np.abs(fz), _scale(slope_y, y.a) + _scale(slope_x, x.a))

    def squared_radius():
        return add(x * x, y * y)

    return _binary(
        y,
        x,
        v,
        e,
        a,
        lambda g: divide(multiply(g, x), squared_radius()),
        lambda g: negative(divide(multiply(g, y), squared_radius())),
        fz,
    )


def hypot(x, y) -> Tracked:
    """√(x² + y²) without overflow: ∂/∂x = x/z."""
    x, y = _wrap(x), _wrap(y)
    xb, yb = np.broadcast_arrays(x.v, y.v)
    v = np.asarray(np.frompyfunc(gmpy2.hypot, 2, 1)(xb, yb), dtype=object)
    fz = _float(v)
    slope_x, slope_y = np.abs(x.f) / fz, np.abs(y.f) / fz
    e = _times(x.e, slope_x) + _times(y.e, slope_y) + LIBM_ULPS * _rounded(fz)
    a = np.maximum(np.abs(fz), _scale(slope_x, x.a) + _scale(slope_y, y.a))
    z = _binary(
        x,
        y,
        v,
        e,
        a,
        lambda g: divide(multiply(g, x), z),
        lambda g: divide(multiply(g, y), z),
        fz,
    )
    return z


# --- Other bases --------------------------------------------------------------------------------


def log2(x) -> Tracked:
    return _unary(
        x,
        gmpy2.log2,
        lambda fx, fz: 1 / (fx * np.log(2)),
        lambda g, x, z: divide(g, multiply(x, _ln2())),
        "log2 of a negative number",
        lambda f: f < 0,
    )


def log10(x) -> Tracked:
    return _unary(
        x,
        gmpy2.log10,
        lambda fx, fz: 1 / (fx * np.log(10)),
        lambda g, x, z: divide(g, multiply(x, _ln10())),
        "log10 of a negative number",
        lambda f: f < 0,
    )


def exp2(x) -> Tracked:
    return _unary(
        x,
        gmpy2.exp2,
        lambda fx, fz: fz * np.log(2),
        lambda g, x, z: multiply(g, multiply(z, _ln2())),
    )


def rsqrt(x) -> Tracked:
    """1/√x as one operation (torch.rsqrt, lax.rsqrt): slope ½·z³, charged LIBM_ULPS (GPUs
    compute it approximately)."""
    return _unary(
        x,
        gmpy2.rec_sqrt,
        lambda fx, fz: 0.5 * fz * fz * fz,
        lambda g, x, z: multiply(g, multiply(-0.5, multiply(z, multiply(z, z)))),
        "rsqrt of a negative number",
        lambda f: f < 0,
    )


def softplus(x, beta=1.0, threshold=None) -> Tracked:
    """log(1 + exp(βx))/β (= logaddexp(0, x) for β = 1). With a threshold (torch's
    F.softplus: 20), x itself where βx exceeds it, as torch computes it."""
    x = _wrap(x)
    smooth = logaddexp(0.0, x) if beta == 1 else divide(logaddexp(0.0, multiply(x, beta)), beta)
    if threshold is None:
        return smooth
    return where(x.f * beta > threshold, x, smooth)


# --- Steps: exact, flat (zero gradient) -------------------------------------------------------


def _step(x, fn) -> Tracked:
    """A piecewise-constant function: exact, so no rounding; its error is taken as 0, which
    holds where the backend's input lies on the same step (as for a comparison in a mask, a
    step crossed is beyond the bound)."""
    x = _wrap(x)
    v = _elementwise(fn, x.v)
    f = _float(v)
    return Tracked(
        v, np.zeros(x.shape, dtype=np.complex128), np.abs(f), (x,), (lambda g: _zeros(x.shape),), f
    )


def sign(x) -> Tracked:
    return _step(x, lambda t: t if gmpy2.is_nan(t) else gmpy2.mpfr(gmpy2.sign(t)))


def floor(x) -> Tracked:
    return _step(x, gmpy2.floor)


def ceil(x) -> Tracked:
    return _step(x, gmpy2.ceil)


def round_(x) -> Tracked:
    """To the nearest integer, ties to even (numpy, torch and JAX alike): MPFR's rint."""
    return _step(x, gmpy2.rint)


def trunc(x) -> Tracked:
    return _step(x, gmpy2.trunc)
