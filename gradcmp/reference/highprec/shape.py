"""Structure: sums, reshapes, transposes, indexing, broadcasting, joining.

All of these move values without computing any, except ``sum_``: their companions move with
the values, and their backward rules move the gradient back (a broadcast's is a sum, an
index's a scatter-add).
"""

from __future__ import annotations

import math

import numpy as np

from .tracked import Tracked, _mode, _wrap, _zeros


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
    rounding = max(k - 1, 0) * (terms + 1j)
    if _mode.ieee and not np.isfinite(terms).all():
        # An infinite sum is exact (an infinite term decides it); a NaN one has no bound.
        rounding = np.where(np.isinf(terms), 0j, rounding)
    e = np.sum(x.e, axis=axes, keepdims=keepdims) + rounding
    a = np.sum(x.a, axis=axes, keepdims=keepdims)
    shape = x.shape

    def backward(g):
        g_kept = reshape(g, tuple(1 if i in axes else n for i, n in enumerate(shape)))
        return broadcast_to(g_kept, shape)

    return Tracked(v, e, a, (x,), (backward,))


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


def _moved(x: Tracked, move, backward) -> Tracked:
    """``x``'s values and companions rearranged by ``move`` (a numpy function), a node whose
    gradient goes back by ``backward``; float64 numbers where x's are."""
    node = Tracked(
        move(x.v), move(x.e), move(x.a), (x,), (backward,), None if x._f is None else move(x._f)
    )
    node.floats_exact = x.floats_exact
    return node


def broadcast_to(x, shape) -> Tracked:
    x = _wrap(x)
    shape = tuple(shape)
    if x.shape == shape:
        return x
    return _moved(x, lambda a: np.broadcast_to(a, shape).copy(), lambda g: _unbroadcast(g, x.shape))


def broadcast_arrays(*arrays) -> list[Tracked]:
    tracked = [_wrap(x) for x in arrays]
    common = np.broadcast_shapes(*(x.shape for x in tracked))
    return [broadcast_to(x, common) for x in tracked]


def reshape(x, shape) -> Tracked:
    x = _wrap(x)
    return _moved(x, lambda a: a.reshape(shape), lambda g: reshape(g, x.shape))


def permute_dims(x, axes) -> Tracked:
    """The axes reordered (``axes[i]`` becomes axis i); the gradient goes back by the inverse
    permutation."""
    x = _wrap(x)
    axes = tuple(a % x.ndim for a in axes) if x.ndim else ()
    inverse = tuple(int(i) for i in np.argsort(axes))
    return _moved(x, lambda a: a.transpose(axes), lambda g: permute_dims(g, inverse))


def transpose(x) -> Tracked:
    """All axes reversed (numpy's ``.T``)."""
    x = _wrap(x)
    return permute_dims(x, tuple(reversed(range(x.ndim))))


def matrix_transpose(x) -> Tracked:
    """The last two axes swapped (the array API's ``matrix_transpose``, ``.mT``)."""
    x = _wrap(x)
    axes = list(range(x.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return permute_dims(x, axes)


def moveaxis(x, source, destination) -> Tracked:
    """Axes ``source`` moved to ``destination`` (ints or sequences), the others in order."""
    x = _wrap(x)
    source = [int(a) % x.ndim for a in np.atleast_1d(source)]
    destination = [int(a) % x.ndim for a in np.atleast_1d(destination)]
    order = [i for i in range(x.ndim) if i not in source]
    for where, axis in sorted(zip(destination, source)):
        order.insert(where, axis)
    return permute_dims(x, order)


def expand_dims(x, axis=0) -> Tracked:
    """A new axis of length 1 at ``axis`` (an int, or a tuple of them) of the result."""
    x = _wrap(x)
    return reshape(x, np.expand_dims(np.empty(x.shape, dtype=bool), axis).shape)


def squeeze(x, axis=None) -> Tracked:
    """The axes ``axis`` (which must have length 1) removed; all length-1 axes if None."""
    x = _wrap(x)
    return reshape(x, np.squeeze(np.empty(x.shape, dtype=bool), axis).shape)


def getitem(x, index) -> Tracked:
    """x[index] (integers, slices, None, integer or boolean arrays); the gradient is added back
    where each element came from (a repeated index accumulates)."""
    x = _wrap(x)
    index = tuple(
        i.f.astype(int) if isinstance(i, Tracked) else i
        for i in (index if isinstance(index, tuple) else (index,))
    )

    def backward(g):
        v = _zeros(x.shape).v
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


def take(x, indices, axis=None) -> Tracked:
    """The elements at ``indices`` along ``axis`` (of the flattened array if None)."""
    x = _wrap(x)
    indices = indices.f.astype(np.int64) if isinstance(indices, Tracked) else indices
    indices = np.asarray(indices, dtype=np.int64)
    if axis is None:
        return getitem(reshape(x, (-1,)), indices)
    return getitem(x, (slice(None),) * (axis % x.ndim) + (indices,))


def flip(x, axis=None) -> Tracked:
    x = _wrap(x)
    axes = _axes(axis, x.ndim)
    reverse = slice(None, None, -1)
    return getitem(x, tuple(reverse if i in axes else slice(None) for i in range(x.ndim)))


def concat(arrays, axis=0) -> Tracked:
    """The arrays joined along ``axis`` (flattened first if None); each gets its slice of the
    gradient back."""
    parts = [_wrap(x) for x in arrays]
    if axis is None:
        parts, axis = [reshape(x, (-1,)) for x in parts], 0
    axis = axis % parts[0].ndim
    bounds = np.cumsum([0] + [x.shape[axis] for x in parts])

    def piece(i):
        where = (slice(None),) * axis + (slice(int(bounds[i]), int(bounds[i + 1])),)
        return lambda g: getitem(g, where)

    join = np.concatenate
    return Tracked(
        join([x.v for x in parts], axis=axis),
        join([x.e for x in parts], axis=axis),
        join([x.a for x in parts], axis=axis),
        tuple(parts),
        tuple(piece(i) for i in range(len(parts))),
        join([x.f for x in parts], axis=axis),
    )


def stack(arrays, axis=0) -> Tracked:
    """The arrays (all of one shape) along a new axis."""
    parts = [_wrap(x) for x in arrays]
    axis = axis % (parts[0].ndim + 1)
    return concat([expand_dims(x, axis) for x in parts], axis=axis)


def repeat(x, repeats, axis=None) -> Tracked:
    """Each element repeated ``repeats`` times along ``axis`` (of the flattened array if None)."""
    x = _wrap(x)
    length = x.size if axis is None else x.shape[axis]
    return take(x, np.repeat(np.arange(length), repeats), axis=axis)
