"""ATen op → high-precision rule, for ``trace_torch``'s evaluation of a traced torch graph.

A float tensor is an ``hp.Tracked`` (MPFR values with error coefficients ``e`` and
magnitudes ``a``); an integer or boolean tensor a plain numpy array; a scalar a Python
number. Rules are keyed by the overload's name ("aten.add.Tensor"; no torch import here),
for the core ATen ops left by ``trace_torch``'s decompositions, and see at least one float
tensor: a node with none (integer indices, boolean masks, constants) is torch's own to
compute, exactly (``trace_torch``). ``apply`` puts a rule's result in the node's dtype.

Moving ops (views, indexing, joining, scatter) move exact values and round nothing;
comparisons, and the choices made from them (max, argmax, clamp, relu, where's predicate),
read the exact values: a tie is a tie of the mathematics.
"""

from __future__ import annotations

import operator

import gmpy2
import numpy as np

from . import highprec as hp

Tracked = hp.Tracked

# Ops whose tensor operands are all values (no index, no predicate): with a float output and
# no float operand (int / int, int · 0.5) the integers become constants first.
ARITHMETIC = {"add", "sub", "rsub", "mul", "div", "pow", "maximum", "minimum", "cat"}
# float32's 1e-12: the clamp of torch's CPU binary_cross_entropy_backward kernel (the Python
# decomposition of that op says float64's 1e-12; trace_torch keeps the op whole).
BCE_EPSILON = float(np.float32(1e-12))


def apply(op: str, fn, args, kwargs, dtype):
    """``fn(*args, **kwargs)``, its result in ``dtype`` (the node's torch dtype): integer
    operands of arithmetic with a float result (int / int) become constants first; a float
    value cast to an integer type is truncated toward zero, as torch casts."""
    floating = dtype is not None and dtype.is_floating_point
    if floating and is_arithmetic(op):
        args = tuple(as_tracked(a) if isinstance(a, np.ndarray | list) else a for a in args)
    value = fn(*args, **kwargs)
    if dtype is None or isinstance(value, tuple | list):
        return value
    if floating:
        return value if isinstance(value, Tracked) else hp.constant(np.asarray(value, float))
    if isinstance(value, Tracked):
        value = np.vectorize(lambda t: int(gmpy2.trunc(t)), otypes=[object])(value.v)
    return np.asarray(value).astype(np.dtype(str(dtype).removeprefix("torch.")))


def is_arithmetic(op: str) -> bool:
    return op.split(".")[1] in ARITHMETIC


def any_tracked(args) -> bool:
    return any(isinstance(a, Tracked) or (isinstance(a, list) and any_tracked(a)) for a in args)


def as_tracked(x):
    """A tensor as a Tracked one (integers, booleans and numbers become constants)."""
    if isinstance(x, list):
        return [as_tracked(p) for p in x]
    return x if isinstance(x, Tracked) else hp.constant(np.asarray(x, dtype=float))


def exact(x):
    """The exact values, as numbers gmpy2 compares with (mpfr, Python ints and bools)."""
    if isinstance(x, Tracked):
        return x.v
    return np.asarray(x).astype(object) if isinstance(x, np.ndarray) else x


def _holds(condition) -> np.ndarray:
    return np.asarray(condition, dtype=bool)


def _axes(dim, ndim) -> tuple[int, ...] | None:
    """torch's ``dim`` as numpy axes (None, and torch's [], reduce all)."""
    if dim is None or (isinstance(dim, list | tuple) and not dim):
        return None
    return tuple(d % max(ndim, 1) for d in (dim if isinstance(dim, list | tuple) else [dim]))


# --- Elementwise ------------------------------------------------------------------------------


def _scaled(fn):
    """add/sub with torch's ``alpha``: y·alpha is a product of its own in torch's kernel too."""
    return lambda x, y, alpha=1: fn(x, y if alpha == 1 else hp.multiply(y, alpha))


def _extreme(larger: bool):
    """torch.maximum/minimum: highprec's companions, the value chosen by the exact comparison
    (highprec's choice reads float64 images, which may tie where the exact values do not);
    a NaN operand gives NaN, as in torch."""

    def extreme(x, y):
        out = (hp.maximum if larger else hp.minimum)(x, y)
        xv, yv = np.broadcast_arrays(as_tracked(x).v, as_tracked(y).v)
        pick = _holds(xv >= yv) if larger else _holds(xv <= yv)
        v = np.where(np.isnan(out.f), out.v, np.where(pick, xv, yv))
        return Tracked(np.asarray(v, dtype=object), out.e, out.a)

    return extreme


def _clamp(x, min=None, max=None):  # noqa: A002 - torch's keyword names
    """min(max(x, lo), hi), the lower bound winning where lo > hi, as torch.clamp (its
    derivative, clamp_backward, is a node of its own in the graph)."""
    if max is not None:
        x = hp.where(_holds(exact(x) > exact(max)), as_tracked(max), x)
    if min is not None:
        x = hp.where(_holds(exact(x) < exact(min)), as_tracked(min), x)
    return x


def _inside(x, bound) -> np.ndarray:  # −bound ≤ x ≤ bound (hard/softshrink's dead zone)
    return _holds(exact(x) >= -bound) & _holds(exact(x) <= bound)


def _bce_backward(grad, x, target, weight=None, reduction=1):
    """torch's CPU kernel: grad·(x − t) / max((1 − x)·x, ε), times the weight, ÷ numel for
    a mean (reduction 1)."""
    denominator = _clamp(hp.multiply(hp.subtract(1, x), x), min=BCE_EPSILON)
    slope = hp.divide(hp.subtract(x, target), denominator)
    out = hp.multiply(grad, slope if weight is None else hp.multiply(slope, weight))
    return hp.divide(out, x.size) if reduction == 1 else out


# --- Reductions and products ------------------------------------------------------------------


def _reduction(fn):
    """sum, mean, amax, … over torch's ``dim`` (a list, [] for all, or None)."""
    return lambda x, dim=None, keepdim=False, dtype=None: fn(x, _axes(dim, x.ndim), keepdim)


def _max_dim(x, dim, keepdim=False, *, larger=True):
    """(values, indices): the first index of the extreme exact value, as torch's CPU kernel."""
    index = _arg(x, dim, True, larger)
    values = _moved(x, lambda a: np.take_along_axis(a, index, axis=dim))
    if keepdim:
        return values, index
    return _moved(values, lambda a: np.squeeze(a, axis=dim)), np.squeeze(index, axis=dim)


def _arg(x, dim=None, keepdim=False, largest=True):
    values = exact(x)
    if dim is None:
        values, dim = values.reshape(-1), 0
    pick = np.argmax if largest else np.argmin
    return np.asarray(pick(values, axis=dim, keepdims=keepdim), dtype=np.int64)


def _spread(fn):
    """var/std with torch's arguments; torch's default is Bessel's correction (N − 1)."""

    def spread(x, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return fn(x, _axes(dim, x.ndim), correction, keepdim)

    return spread


def _cumprod(x, dim, dtype=None):
    """Running products, one tracked product after another (prod's backward uses them)."""
    parts = [_moved(x, _sliced(dim, slice(0, 1)))]
    for i in range(1, np.shape(x)[dim]):
        parts.append(hp.multiply(parts[-1], _moved(x, _sliced(dim, slice(i, i + 1)))))
    return _joined(np.concatenate, parts, dim)


def _addmm(bias, x, y, *, beta=1, alpha=1):
    product = hp.matmul(x, y)
    product = product if alpha == 1 else hp.multiply(product, alpha)
    return hp.add(bias if beta == 1 else hp.multiply(bias, beta), product)


# --- Moving values: views, indexing, joining, scattering (exact) ------------------------------


def _moved(x, fn):
    """``fn`` (a numpy rearrangement) applied to the values and both companions."""
    if not isinstance(x, Tracked):
        return fn(np.asarray(x))
    moved = Tracked(fn(x.v), fn(x.e), fn(x.a), f=fn(x.f))
    moved.floats_exact = x.floats_exact  # floats moved are floats
    return moved


def _joined(join, parts, axis):
    """np.concatenate or np.stack of tensors (a numpy part becomes a constant)."""
    parts = as_tracked(parts)
    v, e, a, f = ([getattr(p, c) for p in parts] for c in ("v", "e", "a", "f"))
    joined = Tracked(join(v, axis), join(e, axis), join(a, axis), f=join(f, axis))
    joined.floats_exact = all(p.floats_exact for p in parts)
    return joined


def _expand(x, size):
    offset = len(size) - np.ndim(x)
    shape = tuple(np.shape(x)[i - offset] if n == -1 else n for i, n in enumerate(size))
    return _moved(x, lambda a: np.broadcast_to(a, shape))


def _sliced(dim, key):
    return lambda a: a[(slice(None),) * (dim % a.ndim) + (key,)]


def _split(x, sizes, dim=0):
    ends = np.cumsum(sizes).tolist()
    return [_moved(x, _sliced(dim, slice(b - n, b))) for n, b in zip(sizes, ends)]


def _along(index, dim):
    """A gather/scatter index as a numpy one: ``index`` along ``dim``, each other axis its
    own position."""
    grid = np.indices(index.shape, sparse=True)
    return tuple(index if d == dim % index.ndim else grid[d] for d in range(index.ndim))


def _head(x, shape):  # the part of a scatter's src its index covers
    return x if np.ndim(x) == 0 else _moved(x, lambda a: a[tuple(slice(0, n) for n in shape)])


def _scatter(dest, key, src, accumulate):
    """``dest`` with ``src`` put at ``dest[key]``, or added there (each addition charged one
    rounding of the sum at that position, as any order of the additions allows)."""
    dest, src = as_tracked(dest), as_tracked(src)
    shape = dest.v[key].shape
    v, e, a = dest.v.copy(), dest.e.copy(), dest.a.copy()
    parts = [np.broadcast_to(part, shape) for part in (src.v, src.e, src.a)]
    if not accumulate:
        v[key], e[key], a[key] = parts
        return Tracked(v, e, a)
    for target, part in zip((v, e, a), parts):
        np.add.at(target, key, part)
    terms, count = np.abs(dest.f), np.zeros(dest.shape)
    np.add.at(terms, key, np.broadcast_to(np.abs(src.f), shape))
    np.add.at(count, key, 1.0)
    return Tracked(v, e + count * (terms + 1j), a)


def _index_put(x, indices, values, accumulate=False):
    return _scatter(x, tuple(slice(None) if i is None else i for i in indices), values, accumulate)


def _pad(x, pad, value=0):
    """F.pad: (before, after) pairs from the last axis back; a negative one crops."""
    pairs = [(0, 0)] * (np.ndim(x) - len(pad) // 2)
    pairs += [(pad[i], pad[i + 1]) for i in range(len(pad) - 2, -1, -2)]
    crop = tuple(slice(max(-b, 0), n - max(-a, 0)) for (b, a), n in zip(pairs, np.shape(x)))
    x, widths = _moved(x, lambda t: t[crop]), [(max(b, 0), max(a, 0)) for b, a in pairs]
    fill = hp.constant(value)
    parts = [np.pad(getattr(x, c), widths, constant_values=getattr(fill, c)[()]) for c in "vea"]
    return Tracked(*parts, f=np.pad(x.f, widths, constant_values=float(value)))


def _var_mean(x, dim=None, *, correction=None, keepdim=False):
    mean = hp.mean(x, _axes(dim, x.ndim), keepdim)
    return _spread(hp.var)(x, dim, None, keepdim, correction=correction), mean


def _vector_norm(x, ord=2, dim=None, keepdim=False, dtype=None):  # noqa: A002 - torch's name
    return hp.vector_norm(x, _axes(dim, x.ndim), keepdim, ord)


def _squeeze(x, dims):
    dims = [d % np.ndim(x) for d in dims if np.ndim(x) and np.shape(x)[d] == 1]
    return _moved(x, lambda a: np.squeeze(a, tuple(dims)))


def _slice_scatter(x, src, dim=0, start=None, end=None, step=1):
    key = (slice(None),) * (dim % x.ndim) + (slice(start, end, step),)
    return _scatter(x, key, src, False)


def _scattering(accumulate: bool):
    def scatter(x, dim, index, src):
        return _scatter(x, _along(index, dim), _head(src, index.shape), accumulate)

    return scatter


def _cat(parts, dim=0):  # torch skips legacy empty 1-d tensors
    return _joined(np.concatenate, [p for p in parts if np.shape(p) != (0,)], dim)


_ROUNDING = {None: lambda q: q, "floor": hp.floor, "trunc": hp.trunc}
COMPARISONS = {"eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "ge": operator.ge}
COMPARISONS |= {"lt": operator.lt, "le": operator.le}
_UNARY = {"exp": hp.exp, "exp2": hp.exp2, "log": hp.log, "log2": hp.log2, "log10": hp.log10}
_UNARY |= {"log1p": hp.log1p, "expm1": hp.expm1, "sqrt": hp.sqrt, "rsqrt": hp.rsqrt}
_UNARY |= {"reciprocal": hp.reciprocal, "tanh": hp.tanh, "sigmoid": hp.sigmoid, "erf": hp.erf}
_UNARY |= {"erfc": hp.erfc, "sin": hp.sin, "cos": hp.cos, "tan": hp.tan, "sinh": hp.sinh}
_UNARY |= {"cosh": hp.cosh, "asin": hp.arcsin, "acos": hp.arccos, "atan": hp.arctan}
_UNARY |= {"asinh": hp.arcsinh, "acosh": hp.arccosh, "atanh": hp.arctanh, "neg": hp.negative}
_UNARY |= {"abs": hp.abs_, "sign": hp.sign, "sgn": hp.sign, "floor": hp.floor, "ceil": hp.ceil}
_UNARY |= {"round": hp.round_, "trunc": hp.trunc}

RULES: dict = {
    "add.Tensor": _scaled(hp.add),
    "sub.Tensor": _scaled(hp.subtract),
    "mul.Tensor": hp.multiply,
    "div.Tensor": hp.divide,
    "div.Tensor_mode": lambda x, y, rounding_mode=None: _ROUNDING[rounding_mode](hp.divide(x, y)),
    "remainder.Tensor": lambda x, y: hp.subtract(x, hp.multiply(hp.floor(hp.divide(x, y)), y)),
    "maximum.default": _extreme(True),
    "minimum.default": _extreme(False),
    "pow.Tensor_Tensor": lambda x, p: hp.pow_(as_tracked(x), p),
    "atan2.default": hp.arctan2,
    "relu.default": lambda x: hp.where(_holds(x.v > 0), x, 0.0),
    "leaky_relu.default": lambda x, s=0.01: hp.where(_holds(x.v > 0), x, hp.multiply(x, s)),
    "clamp.default": _clamp,
    "hardtanh.default": lambda x, lo=-1.0, hi=1.0: _clamp(x, lo, hi),
    "clamp_min.default": lambda x, lo: _clamp(x, min=lo),  # the in-place ones (clamp_min_
    "clamp_max.default": lambda x, hi: _clamp(x, max=hi),  # in F.cosine_similarity) remain
    "masked_fill.Scalar": lambda x, mask, value: hp.where(_holds(mask), value, x),
    "where.self": lambda condition, x, y: hp.where(_holds(condition), x, y),
    "binary_cross_entropy_backward.default": _bce_backward,
    "hardshrink_backward.default": lambda g, x, lambd: hp.where(_inside(x, lambd), 0.0, g),
    "isnan.default": lambda x: np.isnan(x.f),
    "isinf.default": lambda x: np.isinf(x.f),
    "sum.dim_IntList": _reduction(hp.sum_),
    "mean.dim": _reduction(hp.mean),
    "amax.default": _reduction(hp.max_),
    "amin.default": _reduction(hp.min_),
    "prod.dim_int": _reduction(hp.prod),
    "max.dim": _max_dim,
    "min.dim": lambda x, dim, keepdim=False: _max_dim(x, dim, keepdim, larger=False),
    "argmax.default": lambda x, dim=None, keepdim=False: _arg(x, dim, keepdim),
    "argmin.default": lambda x, dim=None, keepdim=False: _arg(x, dim, keepdim, False),
    "var.correction": _spread(hp.var),
    "var_mean.correction": _var_mean,
    "cumsum.default": lambda x, dim, dtype=None: hp.cumulative_sum(x, axis=dim),
    "cumprod.default": _cumprod,
    "linalg_vector_norm.default": _vector_norm,
    "mm.default": hp.matmul,
    "addmm.default": _addmm,
    "cat.default": _cat,
    "view.default": lambda x, shape: _moved(x, lambda a: a.reshape(tuple(shape))),
    "expand.default": lambda x, size, implicit=False: _expand(x, size),
    "permute.default": lambda x, dims: _moved(x, lambda a: np.transpose(a, dims)),
    "unsqueeze.default": lambda x, d: _moved(x, lambda a: np.expand_dims(a, d % (a.ndim + 1))),
    "squeeze.dims": _squeeze,
    "select.int": lambda x, dim, i: _moved(x, _sliced(dim, i)),
    "slice.Tensor": lambda x, dim=0, start=None, end=None, step=1: _moved(
        x, _sliced(dim, slice(start, end, step))
    ),
    "split_with_sizes.default": _split,
    "index.Tensor": lambda x, key: _moved(
        x, lambda a: a[tuple(slice(None) if i is None else i for i in key)]
    ),
    "index_select.default": lambda x, dim, index: _moved(x, lambda a: np.take(a, index, dim)),
    "gather.default": lambda x, dim, i, sparse_grad=False: _moved(x, lambda a: a[_along(i, dim)]),
    "index_put.default": _index_put,
    "slice_scatter.default": _slice_scatter,
    "scatter_add.default": _scattering(True),
    "scatter.src": _scattering(False),
    "index_add.default": lambda x, dim, index, src, alpha=1: _scatter(
        x, (slice(None),) * (dim % x.ndim) + (index,), hp.multiply(src, alpha), True
    ),
    "flip.default": lambda x, dims: _moved(x, lambda a: np.flip(a, tuple(dims))),
    "repeat.default": lambda x, repeats: _moved(x, lambda a: np.tile(a, tuple(repeats))),
    "alias.default": lambda x, *args, **kwargs: x,  # also clone, _to_copy: the dtype is
    # ``apply``'s business, and a cast between float types changes no exact value
    "copy.default": lambda dest, src, non_blocking=False: _expand(src, np.shape(dest)),
    "constant_pad_nd.default": _pad,
    "full_like.default": lambda x, value, **kwargs: np.full(np.shape(x), value),
    "zero.default": lambda x: np.zeros(np.shape(x)),
    "fill.Tensor": lambda x, value: _expand(value, np.shape(x)),
    "_local_scalar_dense.default": lambda x: hp.reshape(x, ()),
}
RULES |= {f"{name}.default": fn for name, fn in _UNARY.items()}
RULES |= {
    f"{name}.{kind}": lambda x, y, compare=compare: _holds(compare(exact(x), exact(y)))
    for name, compare in COMPARISONS.items()
    for kind in ("Tensor", "Scalar")
}
# Overloads with the same rule, "op.overload=op.other" (the Scalar ones take a number).
_SAME = """add.Scalar=add.Tensor sub.Scalar=sub.Tensor mul.Scalar=mul.Tensor
div.Scalar=div.Tensor div.Scalar_mode=div.Tensor_mode remainder.Scalar=remainder.Tensor
pow.Tensor_Scalar=pow.Tensor_Tensor pow.Scalar=pow.Tensor_Tensor clamp.Tensor=clamp.default
clamp_min.Tensor=clamp_min.default clamp_max.Tensor=clamp_max.default
masked_fill.Tensor=masked_fill.Scalar fill.Scalar=full_like.default
softshrink_backward.default=hardshrink_backward.default mean.default=mean.dim
max.default=amax.default min.default=amin.default
prod.default=prod.dim_int bmm.default=mm.default mv.default=mm.default dot.default=mm.default
reshape.default=view.default scatter.value=scatter.src clone.default=alias.default
lift_fresh_copy.default=alias.default _to_copy.default=alias.default"""
RULES |= {alias: RULES[name] for alias, name in (pair.split("=") for pair in _SAME.split())}
RULES = {f"aten.{name}": fn for name, fn in RULES.items()}
