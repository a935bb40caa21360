"""Structural primitives of the JAX shadow interpreter: they move, repeat or pick elements and
compute nothing (broadcast, reshape, slice, gather, scatter, select …). ``each`` applies one
alike to a tracked value's values, error coefficients, magnitudes and float image."""

from __future__ import annotations

import math

import numpy as np

from . import highprec as hp

Tracked = hp.Tracked


def is_float_dtype(dtype) -> bool:
    from jax import dtypes

    return dtype is not None and dtypes.issubdtype(dtype, np.floating)


def wrap(x) -> Tracked:
    return x if isinstance(x, Tracked) else hp.constant(np.asarray(x, dtype=np.float64))


def _images(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=object).astype(np.float64)


def _map(fn, *arrays) -> np.ndarray:
    out = np.frompyfunc(fn, len(arrays), 1)(*arrays)
    return out if isinstance(out, np.ndarray) else np.array(out, dtype=object)


def each(fn, *xs):
    """A structural operation (it moves, repeats or picks elements) on values: alike on a
    tracked value's v, e, a and float image, or on plain arrays where none is tracked."""
    if not any(isinstance(x, Tracked) for x in xs):
        return fn(*(np.asarray(x) for x in xs))
    ts = [wrap(x) for x in xs]
    return Tracked(*(fn(*(getattr(t, k) for t in ts)) for k in "vea"), f=fn(*(t.f for t in ts)))


# --- structure: elements moved, repeated or picked; nothing computed --------------------------


def broadcast_in_dim(x, *_, shape, broadcast_dimensions, **__):
    new = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    return each(lambda t: np.broadcast_to(np.expand_dims(t, new), tuple(shape)), x)


def reshape(x, *_, new_sizes, dimensions=None, **__):
    order = (lambda t: np.transpose(t, dimensions)) if dimensions else (lambda t: t)
    return each(lambda t: order(t).reshape(tuple(new_sizes)), x)


def _clamped(starts, sizes, shape) -> tuple[slice, ...]:
    """XLA's dynamic slicing: each start clamped so that the slice stays inside."""
    starts = [min(max(int(np.asarray(s)), 0), n - k) for s, k, n in zip(starts, sizes, shape)]
    return tuple(slice(s, s + k) for s, k in zip(starts, sizes))


def dynamic_update_slice(x, update, *starts, **_):
    def fn(t, u):
        out = np.array(t)
        out[_clamped(starts, u.shape, t.shape)] = u
        return out

    return each(fn, x, update)


def _pad(t, value, config):
    """lax.pad: (low, high, interior) per axis; a negative low or high crops."""
    core = [n + max(n - 1, 0) * i for n, (_, _, i) in zip(t.shape, config)]
    shape = [max(lo, 0) + c + max(hi, 0) for c, (lo, hi, _) in zip(core, config)]
    out = np.full(shape, value[()], dtype=t.dtype)
    out[tuple(slice(max(lo, 0), max(lo, 0) + c, i + 1) for c, (lo, _, i) in zip(core, config))] = t
    return out[tuple(slice(-min(lo, 0), n + min(hi, 0)) for n, (lo, hi, _) in zip(shape, config))]


def select_n(which, *cases, **_):
    which = np.asarray(which).astype(np.int64)  # False/True: the first case or the second
    return each(lambda *cs: np.choose(which, np.broadcast_arrays(*cs)), *cases)


def split(x, *, sizes, axis, **_):
    bounds = np.cumsum([0, *sizes]).tolist()
    cuts = [(slice(None),) * axis + (slice(lo, hi),) for lo, hi in zip(bounds, bounds[1:])]
    return [each(lambda t, c=c: t[c], x) for c in cuts]


def iota(*, dtype, shape, dimension, **_):
    values = np.indices(tuple(shape))[dimension]
    return hp.constant(values) if is_float_dtype(dtype) else values.astype(dtype)


def sort(*operands, dimension, num_keys=1, **_):
    """A stable sort on the first operand's exact values; the others follow it."""
    if num_keys != 1:
        raise hp.UnsupportedOperation(f"sort with {num_keys} keys")
    key = operands[0]
    order = np.argsort(key.v if isinstance(key, Tracked) else key, axis=dimension, kind="stable")
    return [each(lambda t: np.take_along_axis(t, order, axis=dimension), x) for x in operands]


def gather(x, indices, *, fill_value=None, **params):
    """Any gather: JAX gathers the operand's positions (plus one slot for the fill value of an
    out-of-bounds slice), and the values follow those positions."""
    from jax import lax

    x = wrap(x)
    positions = np.arange(x.size).reshape(x.shape)
    taken = np.asarray(
        lax.gather_p.bind(positions, np.asarray(indices), fill_value=x.size, **params)
    )
    fill = hp.constant(np.nan if fill_value is None else fill_value)
    return each(lambda t, f: np.concatenate([t.ravel(), f.ravel()])[taken], x, fill)


def _targets(shape, indices, update_shape, numbers, mode) -> np.ndarray:
    """Where each update element of a scatter lands (flat operand positions, −1 where dropped
    out of bounds): the scatter-add's transpose (a gather, JAX's own) applied to the operand's
    positions, counted from 1 so that 0 is a dropped update; float64 holds them exactly."""
    import jax

    def scatter_add(u):
        return jax.lax.scatter_add(np.zeros(shape), indices, u, numbers, mode=mode)

    positions = np.arange(1.0, math.prod(shape) + 1).reshape(shape)
    (landing,) = jax.linear_transpose(scatter_add, np.zeros(update_shape))(positions)
    return np.asarray(landing).astype(np.int64).ravel() - 1


def scatter(x, indices, updates, *, dimension_numbers, mode, add=False, **_):
    """x with the updates put where they land (the last one where several do), or added
    (scatter-add): then each element is a sum of k terms (itself where non-zero, and its
    updates), charged (k − 1)·Σ|terms| as any sum."""
    x, updates = wrap(x), wrap(updates)
    where = _targets(x.shape, indices, updates.shape, dimension_numbers, mode)
    keep = where >= 0
    where = where[keep]

    def put(t, u):
        out = t.ravel().copy()
        if add:
            np.add.at(out, where, u.ravel()[keep])
        else:
            out[where] = u.ravel()[keep]
        return out.reshape(t.shape)

    out = each(put, x, updates)
    if not add:
        return out
    count = (x.f != 0).astype(np.float64).ravel()
    np.add.at(count, where, 1.0)
    terms = put(np.abs(x.f), np.abs(updates.f))
    e = out.e + np.maximum(count.reshape(x.shape) - 1, 0) * (terms + 1j)
    return Tracked(out.v, e, out.a, f=_images(out.v))


def _identity(*xs, **_):
    return xs[0] if len(xs) == 1 else list(xs)


def _one(fn):  # a one-operand structural primitive from numpy, its parameters by name
    return lambda x, **params: each(lambda t: fn(t, **params), x)


STRUCTURE = {
    "broadcast_in_dim": broadcast_in_dim,
    "reshape": reshape,
    "squeeze": _one(lambda t, dimensions, **_: np.squeeze(t, tuple(dimensions))),
    "transpose": _one(lambda t, permutation, **_: np.transpose(t, permutation)),
    "rev": _one(lambda t, dimensions, **_: np.flip(t, tuple(dimensions))),
    "slice": _one(
        lambda t, start_indices, limit_indices, strides=None, **_: t[
            tuple(map(slice, start_indices, limit_indices, strides or [None] * t.ndim))
        ]
    ),
    "dynamic_slice": lambda x, *starts, slice_sizes, **_: each(
        lambda t: t[_clamped(starts, slice_sizes, t.shape)], x
    ),
    "dynamic_update_slice": dynamic_update_slice,
    "concatenate": lambda *xs, dimension, **_: each(lambda *ts: np.concatenate(ts, dimension), *xs),
    "pad": lambda x, pad, *, padding_config, **_: each(
        lambda t, p: _pad(t, p, padding_config), x, pad
    ),
    "select_n": select_n,
    "split": split,
    "stack": lambda *xs, axis, **_: each(lambda *ts: np.stack(ts, axis), *xs),
    "unstack": lambda x, *, axis, **_: [
        each(lambda t, i=i: np.take(t, i, axis), x) for i in range(np.shape(x)[axis])
    ],
    "tile": _one(lambda t, reps, **_: np.tile(t, reps)),
    "iota": iota,
    "sort": sort,
    **dict.fromkeys(
        ("copy", "copy_p", "stop_gradient", "optimization_barrier", "reduce_precision"), _identity
    ),
}
