"""The primitive rules of the JAX shadow interpreter (``trace_jax``).

``RULES``: a primitive's name → a function of its operands (``hp.Tracked`` for floats, numpy
arrays for integers and booleans) and parameters, giving its result(s) in high precision, by
highprec's error conventions (IEEE values under ``working_precision(ieee=True)``). ``PLAIN``:
numpy versions for integer and boolean results (float operands as their float64 images).
Structural primitives (broadcast, slice, gather, select …) compute nothing: ``each`` applies
them alike to the values, their error coefficients, magnitudes and float images.
"""

from __future__ import annotations

import math
import operator

import gmpy2
import numpy as np

from . import highprec as hp
from .jax_structure import STRUCTURE, _images, _map, each, gather, is_float_dtype, scatter, wrap

Tracked = hp.Tracked


# --- elementwise ----------------------------------------------------------------------------

# primitive: highprec function (IEEE values under working_precision(ieee=True))
_HP = """add:add add_any:add sub:subtract mul:multiply div:divide neg:negative abs:abs_
square:square pow:pow_ atan2:arctan2 exp:exp exp2:exp2 log:log log1p:log1p expm1:expm1
tanh:tanh logistic:sigmoid sqrt:sqrt rsqrt:rsqrt sin:sin cos:cos tan:tan asin:arcsin
acos:arccos atan:arctan sinh:sinh cosh:cosh asinh:arcsinh acosh:arccosh atanh:arctanh
erf:erf erfc:erfc sign:sign floor:floor ceil:ceil"""


def unary(x, fn, slope, ulps=hp.LIBM_ULPS) -> Tracked:
    """fn(x) elementwise in MPFR, |dfn/dx| = slope(x, z) on float images: the operand's error
    times the slope plus ``ulps`` roundings of the result (highprec's running error rule)."""
    x = wrap(x)
    v = _map(fn, x.v)
    z = _images(v)
    s = np.abs(slope(x.f, z))
    return Tracked(v, s * x.e + ulps * (np.abs(z) + 1j), np.maximum(np.abs(z), s * x.a), f=z)


def integer_pow(x, *, y: int) -> Tracked:
    """x**y as XLA computes it, by repeated squaring: one rounding per multiplication."""
    x = wrap(x)
    if y in (0, 1, 2):
        return (hp.constant(np.ones(x.shape)), x, hp.multiply(x, x))[y]
    n = abs(y)
    products = n.bit_length() + bin(n).count("1") - 2 + (y < 0)
    return unary(x, lambda t: t**y, lambda fx, fz: y * fx ** (y - 1), ulps=max(products, 1))


def rem(x, y, **_) -> Tracked:
    """fmod, exact in IEEE arithmetic (no rounding): slopes 1 and the quotient."""
    x, y = wrap(x), wrap(y)
    v = _map(gmpy2.fmod, *np.broadcast_arrays(x.v, y.v))
    z, q = _images(v), np.abs(np.trunc(x.f / y.f))
    return Tracked(v, x.e + q * y.e + 0 * z, np.maximum(np.abs(z), x.a + q * y.a), f=z)


def erf_inv(x, **_) -> Tracked:
    """erf⁻¹ by Newton's method on MPFR's erf from JAX's float64 value: each step doubles
    the correct bits (53 → 106 → 212), so three reach the working precision; one more."""
    from jax import lax

    half_sqrt_pi = gmpy2.sqrt(gmpy2.const_pi()) / 2

    def solve(target, guess):
        t = gmpy2.mpfr(float(guess))
        for _ in range(4 if gmpy2.is_finite(t) and abs(target) < 1 else 0):
            t = t - (gmpy2.erf(t) - target) * half_sqrt_pi * gmpy2.exp(t * t)
        return t

    x = wrap(x)
    v = _map(solve, x.v, np.asarray(lax.erf_inv(x.f)))
    z = _images(v)
    s = math.sqrt(math.pi) / 2 * np.exp(z * z)  # the slope, 1/erf'(z)
    e = s * x.e + hp.LIBM_ULPS * (np.abs(z) + 1j)
    return Tracked(v, e, np.maximum(np.abs(z), s * x.a), f=z)


def round_(x, *, rounding_method=0, **_) -> Tracked:
    """lax.round: method 1 rounds halves to even (jnp.round's), 0 away from zero."""
    if int(rounding_method) == 1:
        return hp.round_(x)
    return hp.multiply(hp.sign(x), hp.floor(hp.add(hp.abs_(x), 0.5)))


def _extremum(larger: bool):
    """max/min on the exact values (a near tie in float64 is no tie here); NaN wins, as in
    XLA. Its error is at most the larger of the operands' errors (either may be picked near
    a tie), its magnitude the chosen operand's (not a masked −inf's beside it)."""

    def rule(x, y, **_):
        x, y = wrap(x), wrap(y)
        xv, yv = np.broadcast_arrays(x.v, y.v)
        fx, fy = np.broadcast_arrays(x.f, y.f)
        keep = np.asarray(xv >= yv if larger else xv <= yv, dtype=bool) | np.isnan(fx)
        e = np.maximum(x.e.real, y.e.real) + 1j * np.maximum(x.e.imag, y.e.imag)
        a = np.where(keep, *np.broadcast_arrays(x.a, y.a))
        return Tracked(np.where(keep, xv, yv), e, a, f=np.where(keep, fx, fy))

    return rule


def clamp(lo, x, hi, **_):
    return _extremum(False)(_extremum(True)(x, lo), hi)


def equal(x, y) -> np.ndarray:
    """Where two operands are exactly equal (a tie of a comparison, a max or a min)."""
    x, y = wrap(x), wrap(y)
    return np.asarray(x.v == y.v, dtype=bool)


def _compare(op):  # on the exact values: a comparison of near-equal floats is exact here
    return lambda x, y, **_: np.asarray(op(wrap(x).v, wrap(y).v), dtype=bool)


def convert_element_type(x, *, new_dtype, **_):
    """Float to float changes nothing (the reference is the mathematics, as in highprec);
    float to integer truncates the exact value, as XLA's conversion does."""
    if not isinstance(x, Tracked):
        array = np.asarray(x)
        return hp.constant(array.astype(np.float64)) if is_float_dtype(new_dtype) else array
    if is_float_dtype(new_dtype):
        return x
    if np.dtype(new_dtype) == np.bool_:
        return np.asarray(x.v != 0, dtype=bool)
    if np.isfinite(x.f).all():
        return np.asarray(_map(lambda t: int(gmpy2.trunc(t)), x.v).astype(np.int64), new_dtype)
    return x.f.astype(new_dtype)


# --- reductions and products ----------------------------------------------------------------


def cumsum(x, *, axis: int, reverse: bool = False, **_):
    flip = (lambda t: np.flip(t, axis)) if reverse else (lambda t: t)
    if not isinstance(x, Tracked):
        return flip(np.cumsum(flip(np.asarray(x)), axis))
    return each(flip, hp.cumulative_sum(each(flip, x), axis=axis))


def dot_general(x, y, *, dimension_numbers, **_) -> Tracked:
    """Any contraction as one batched product through hp.matmul (exact sums of exact
    products, limb by limb on float64 BLAS): the operands permuted to (batch, free,
    contracted) and (batch, contracted, free); the result is (batch, x's free, y's free)."""
    (xc, yc), (xb, yb) = dimension_numbers
    xc, yc, xb, yb = (tuple(int(d) for d in ds) for ds in (xc, yc, xb, yb))
    x, y = wrap(x), wrap(y)
    xf = tuple(d for d in range(x.ndim) if d not in xc + xb)
    yf = tuple(d for d in range(y.ndim) if d not in yc + yb)
    batch, rows, inner = (math.prod(x.shape[d] for d in ds) for ds in (xb, xf, xc))
    cols = math.prod(y.shape[d] for d in yf)
    shape = tuple(x.shape[d] for d in xb + xf) + tuple(y.shape[d] for d in yf)
    if inner == 0 or rows * cols * batch == 0:
        return hp.constant(np.zeros(shape))
    xt = each(lambda t: np.transpose(t, xb + xf + xc).reshape(batch, rows, inner), x)
    yt = each(lambda t: np.transpose(t, yb + yc + yf).reshape(batch, inner, cols), y)
    if batch == 1:
        xt, yt = each(lambda t: t[0], xt), each(lambda t: t[0], yt)
    out = hp.matmul(xt, yt)
    out.parents, out.backward = (), ()
    return each(lambda t: t.reshape(shape), out)


def _trunc_div(x, y, **_):
    x, y = np.asarray(x), np.asarray(y)
    return (np.abs(x) // np.where(y == 0, 1, np.abs(y))) * np.sign(x) * np.sign(y)


def _pairs(table: str):
    return (pair.split(":") for pair in table.split())


RULES = {
    **STRUCTURE,
    "cumsum": cumsum,
    "convert_element_type": convert_element_type,
    **{k: (lambda f: lambda *xs, **_: f(*xs))(getattr(hp, v)) for k, v in _pairs(_HP)},
    **{k: _compare(getattr(operator, k)) for k in ("eq", "ne", "lt", "le", "gt", "ge")},
    "cbrt": lambda x, **_: unary(x, gmpy2.cbrt, lambda fx, fz: fz / (3 * fx)),
    "integer_pow": integer_pow,
    "rem": rem,
    "erf_inv": erf_inv,
    "round": round_,
    "max": _extremum(True),
    "min": _extremum(False),
    "clamp": clamp,
    "reduce_sum": lambda x, *, axes, **_: hp.sum_(x, axis=tuple(axes)) if axes else x,
    "reduce_max": lambda x, *, axes, **_: hp.max_(x, axis=tuple(axes)) if axes else x,
    "reduce_min": lambda x, *, axes, **_: hp.min_(x, axis=tuple(axes)) if axes else x,
    "reduce_prod": lambda x, *, axes, **_: hp.prod(x, axis=tuple(axes)) if axes else x,
    "dot_general": dot_general,
    "gather": gather,
    "scatter-add": lambda *xs, **params: scatter(*xs, add=True, **params),
    "scatter": scatter,
}

_NUMPY = """add:add add_any:add sub:subtract mul:multiply neg:negative max:maximum min:minimum
abs:abs sign:sign rem:fmod and:bitwise_and or:bitwise_or xor:bitwise_xor not:invert eq:equal
ne:not_equal lt:less le:less_equal gt:greater ge:greater_equal is_finite:isfinite"""
_AXES = """reduce_sum:sum reduce_max:max reduce_min:min reduce_and:all reduce_or:any
argmax:argmax argmin:argmin"""


def _along(fn):
    def rule(x, *, axes, index_dtype=None, **_):
        if index_dtype is None:
            return fn(x, axis=tuple(axes))
        return fn(x, axis=axes[0]).astype(index_dtype)

    return rule


# Integer and boolean results, in numpy (float operands as their float64 images); what is
# missing here JAX itself evaluates on the plain arrays.
PLAIN = {
    **STRUCTURE,
    "cumsum": cumsum,
    "convert_element_type": convert_element_type,
    **{k: getattr(np, v) for k, v in _pairs(_NUMPY)},
    **{k: _along(getattr(np, v)) for k, v in _pairs(_AXES)},
    "div": _trunc_div,
    "clamp": lambda lo, x, hi, **_: np.clip(x, lo, hi),
}


# --- kinks: the op ran exactly where it is not differentiable; JAX's convention there ----------

KINKS = {
    "max": "jnp.maximum at a tie: JAX splits the gradient ½/½",
    "min": "jnp.minimum at a tie: JAX splits the gradient ½/½",
    "abs": "jnp.abs at 0: JAX gives slope +1",
    "sign": "jnp.sign at 0: a jump; JAX gives slope 0",
    "sqrt": "jnp.sqrt at 0: the slope is infinite",
    "clamp": "lax.clamp at a bound: JAX gives slope 0",
    "reduce_max": "jnp.max at a tie: JAX splits the gradient evenly among the tied elements",
    "reduce_min": "jnp.min at a tie: JAX splits the gradient evenly among the tied elements",
    "select_n": "jnp.where on a comparison at a tie (x > 0 at x = 0): JAX takes the slope of "
    "the branch the comparison selects",
}
# Inside a custom_jvp function its own rule gives the slope: a kink of its implementation is
# one of the function only where the function is not smooth (softplus' max is no kink).
CUSTOM_KINKS = {
    "relu": "jax.nn.relu at 0: JAX gives slope 0",
    "relu6": "jax.nn.relu6 at 0 or 6: JAX gives slope 0",
}


def kink(name, values, out, params) -> tuple[str, int, int]:
    """(what, at how many elements, of how many) where ``name`` ran exactly at its kink."""
    if name not in KINKS or name == "select_n":
        return "", 0, 0
    if name in ("max", "min"):
        at = equal(values[0], values[1])
    elif name == "clamp":
        at = equal(values[1], values[0]) | equal(values[1], values[2])
    elif name in ("reduce_max", "reduce_min"):  # groups with two elements at the extremum
        x, axes = wrap(values[0]), tuple(params["axes"])
        kept = [1 if d in axes else n for d, n in enumerate(x.shape)]
        at = np.sum(np.asarray(x.v == out.v.reshape(kept), dtype=bool), axis=axes) > 1
    else:
        at = equal(values[0], 0.0)
    count = int(np.count_nonzero(at))
    return (KINKS[name] if count else ""), count, int(np.size(at))


# --- Values as the interpreter (trace_jax.py) makes them ---------------------------------------


def settled(out: hp.Tracked, float_ins: list[hp.Tracked]) -> hp.Tracked:
    """No reverse mode here: nothing kept alive through ``parents``. And where an infinite
    operand gives a finite result (exp(−inf) = 0 in a masked softmax, 1/inf = 0), that result
    is exact in every backend: its error is 0 and its magnitude its own, not the 0·inf (NaN)
    or inf its slope times the operand's companions make."""
    out.parents, out.backward = (), ()
    if all(np.isfinite(v.f).all() for v in float_ins):
        return out
    finite = np.isfinite(out.f)
    lost = finite & ~(np.isfinite(out.e) & np.isfinite(out.a))
    if lost.any():
        out.e = np.where(lost, 0, out.e)
        out.a = np.where(lost, np.abs(out.f), out.a)
    return out


def constant(value, dtype):
    """A literal or a constant of the jaxpr: a float exactly as given (hp.constant), else a
    plain array."""
    array = np.asarray(value)
    return hp.constant(array.astype(np.float64)) if is_float_dtype(dtype) else array
