"""Reductions beyond the plain sum: mean, max/min, product, variance, cumulative sum, norms.

Most are compositions of tracked operations (so their bounds are the running error of the
usual algorithm: two-pass variance, sequential product); max and min are single exact nodes.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np

from .elementwise import abs_, divide, multiply, negative, sqrt, subtract
from .functions import pow_
from .shape import _axes, concat, flip, getitem, permute_dims, reshape, sum_
from .tracked import Tracked, _complex, _float, _mode, _rounded, _wrap, _zeros, constant


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


def max_(x, axis=None, keepdims=False) -> Tracked:
    """The largest element, exactly (a backend's max rounds nothing): its error is at most the
    largest of the elements' errors, as any of them may be the one a backend picks near a tie.
    At a tie the gradient is split evenly (as torch.amax and jnp.max do)."""
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    top = np.asarray(np.max(x.v, axis=axes, keepdims=True), dtype=object)
    if _mode.ieee:  # a NaN element makes the maximum NaN (object max would skip it)
        top = np.where(np.isnan(x.f).any(axis=axes, keepdims=True), gmpy2.nan(), top)
    mask = np.asarray(x.v == top, dtype=bool)
    count = np.sum(mask, axis=axes, keepdims=True)
    kept = top.shape
    out_shape = kept if keepdims else tuple(n for i, n in enumerate(x.shape) if i not in axes)

    e_real, e_imag, a = x.e.real, x.e.imag, x.a
    if _mode.ieee:
        # An infinite element (a −∞ mask) below a finite maximum is never the one picked:
        # its companions stay out, as in maximum.
        aside = ~np.isfinite(x.f) & np.isfinite(_float(top))
        e_real, e_imag, a = (np.where(aside, 0.0, part) for part in (e_real, e_imag, a))

    def reduce(values):
        return np.max(values, axis=axes, keepdims=keepdims)

    e = _complex(reduce(e_real), reduce(e_imag))
    shape_ = x.shape

    def backward(g: Tracked) -> Tracked:
        spread = multiply(reshape(g, kept), constant(mask.astype(np.float64)))
        if (count == 1).all():
            return spread
        # The framework divides by the count of ties (which rounds, when it is not 1 or 2ⁿ).
        return divide(spread, constant(np.broadcast_to(count, shape_).astype(np.float64)))

    return Tracked(top.reshape(out_shape), e, reduce(a), (x,), (backward,))


def min_(x, axis=None, keepdims=False) -> Tracked:
    return negative(max_(negative(x), axis=axis, keepdims=keepdims))


def prod(x, axis=None, keepdims=False) -> Tracked:
    """Π of k factors as k − 1 tracked products in sequence. The rounding part of the bound,
    (k − 1)·|Π|, is the same for every order; the gradient Π_{j≠i} x_j holds at zeros too."""
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    rest = [i for i in range(x.ndim) if i not in axes]
    k = math.prod(x.shape[i] for i in axes)
    kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    out_shape = kept if keepdims else tuple(x.shape[i] for i in rest)
    if k == 0:
        return constant(np.ones(out_shape))
    flat = reshape(permute_dims(x, rest + list(axes)), tuple(x.shape[i] for i in rest) + (k,))
    lead = (slice(None),) * len(rest)
    out = getitem(flat, lead + (0,))
    for j in range(1, k):
        out = multiply(out, getitem(flat, lead + (j,)))
    return reshape(out, out_shape)


def var(x, axis=None, correction=0, keepdims=False) -> Tracked:
    """Σ (x − mean)² / (N − correction): the two-pass algorithm, as torch and JAX compute it."""
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    n = math.prod(x.shape[a] for a in axes) if axes else 1
    deviation = subtract(x, mean(x, axis=axes, keepdims=True))
    total = sum_(multiply(deviation, deviation), axis=axes, keepdims=keepdims)
    return divide(total, n - correction)


def std(x, axis=None, correction=0, keepdims=False) -> Tracked:
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def cumulative_sum(x, axis=None, include_initial=False) -> Tracked:
    """The running sums along ``axis`` (of the flattened array if None). The j-th is a sum of
    j + 1 terms: Higham's j·Σ|terms| for it, as for any sum; the gradient is the running sum
    of the gradient from the other end."""
    x = _wrap(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = axis % x.ndim
    v = np.asarray(np.cumsum(x.v, axis=axis), dtype=object)
    terms = np.cumsum(np.abs(x.f), axis=axis)
    additions = np.arange(x.shape[axis]).reshape((-1,) + (1,) * (x.ndim - axis - 1))
    rounding = additions * (terms + 1j)
    if _mode.ieee:  # an infinite sum is exact (as in sum_)
        rounding = np.where(np.isinf(terms), 0j, rounding)
    e = np.cumsum(x.e, axis=axis) + rounding
    out = Tracked(
        v,
        e,
        np.cumsum(x.a, axis=axis),
        (x,),
        (lambda g: flip(cumulative_sum(flip(g, axis), axis), axis),),
    )
    if not include_initial:
        return out
    first = _zeros(tuple(1 if i == axis else n for i, n in enumerate(x.shape)))
    return concat([first, out], axis=axis)


def vector_norm(x, axis=None, keepdims=False, ord=2) -> Tracked:
    """(Σ|x|^ord)^(1/ord) over ``axis`` (all axes if None); ord may be ±inf (max/min |x|), 1,
    2 (√Σx², the usual) or any other p; 0 counts the nonzero elements (no gradient)."""
    x = _wrap(x)
    if ord == 2:
        return sqrt(sum_(multiply(x, x), axis=axis, keepdims=keepdims))
    if ord == 1:
        return sum_(abs_(x), axis=axis, keepdims=keepdims)
    if ord == math.inf:
        return max_(abs_(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return min_(abs_(x), axis=axis, keepdims=keepdims)
    if ord == 0:
        return constant(np.sum(x.f != 0, axis=_axes(axis, x.ndim), keepdims=keepdims))
    return pow_(sum_(pow_(abs_(x), ord), axis=axis, keepdims=keepdims), 1 / ord)
