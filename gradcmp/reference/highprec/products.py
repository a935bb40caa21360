"""Matrix products as single nodes: matmul (batched too), tensordot, einsum, vecdot.

Each element of a product is the exact sum of its exact products, rounded once (``limbs``);
its companions are what the elementwise rules would add up for those products and their sum,
computed as float64 matrix products of the operands' companions.
"""

from __future__ import annotations

import math

import numpy as np

from .elementwise import multiply
from .limbs import _exact_matmul
from .shape import (
    broadcast_to,
    matrix_transpose,
    permute_dims,
    reshape,
    squeeze,
    sum_,
    transpose,
)
from .tracked import Tracked, UnsupportedOperation, _complex, _wrap


def matmul(x, y) -> Tracked:
    """Products summed over the shared axis: vector·vector, matrix·vector, matrix·matrix, and
    stacks of matrices (batch axes broadcast as numpy's matmul)."""
    x, y = _wrap(x), _wrap(y)
    k = x.shape[-1] if x.ndim else 0
    if 1 <= x.ndim <= 2 and 1 <= y.ndim <= 2 and k == y.shape[0] and k:
        return _dot(x, y)
    stacked = x.ndim and y.ndim and max(x.ndim, y.ndim) >= 3
    if stacked and k and k == y.shape[-2 if y.ndim > 1 else 0]:
        return _stacked(x, y)
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


def _cdot(a: np.ndarray, b: np.ndarray, product=np.dot) -> np.ndarray:
    """a @ b where one of them is complex (error coefficients) and the other real (absolute
    values): the real and imaginary parts each by a float64 matrix product."""
    part = np.ascontiguousarray
    if np.iscomplexobj(a):
        return _complex(product(part(a.real), b), product(part(a.imag), b))
    return _complex(product(a, part(b.real)), product(a, part(b.imag)))


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
        x.v.reshape(-1, k),
        x.f.reshape(-1, k),
        y.v.reshape(k, -1),
        y.f.reshape(k, -1),
        (x.floats_exact, y.floats_exact),
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


def _stacked(x: Tracked, y: Tracked) -> Tracked:
    """matmul where an operand has batch axes: a vector operand becomes a one-row (x) or
    one-column (y) matrix, the batch axes broadcast, and the product is one ``_batched``
    node; the broadcast's backward sums the gradient over the batch axes it stretched."""
    xm = reshape(x, (1,) + x.shape) if x.ndim == 1 else x
    ym = reshape(y, y.shape + (1,)) if y.ndim == 1 else y
    batch = np.broadcast_shapes(xm.shape[:-2], ym.shape[:-2])
    z = _batched(broadcast_to(xm, batch + xm.shape[-2:]), broadcast_to(ym, batch + ym.shape[-2:]))
    if y.ndim == 1:
        z = squeeze(z, -1)
    if x.ndim == 1:
        z = squeeze(z, -2)
    return z


def _batched(x: Tracked, y: Tracked) -> Tracked:
    """(…, m, k) @ (…, k, n) with one batch shape, as one node: each matrix of the stack as
    ``_dot`` computes it (exact sums rounded once), the companions by numpy's batched float64
    matrix products, by ``_dot``'s rule."""
    k, m, n = x.shape[-1], x.shape[-2], y.shape[-1]
    batch = x.shape[:-2]
    xv, xf = x.v.reshape(-1, m, k), x.f.reshape(-1, m, k)
    yv, yf = y.v.reshape(-1, k, n), y.f.reshape(-1, k, n)
    v = np.empty((xv.shape[0], m, n), dtype=object)
    for i in range(xv.shape[0]):
        exact = _exact_matmul(xv[i], xf[i], yv[i], yf[i], (x.floats_exact, y.floats_exact))
        v[i] = exact if exact is not None else np.dot(xv[i], yv[i])
    fx, fy = np.abs(x.f), np.abs(y.f)
    e = (
        _cdot(x.e, fy, np.matmul)
        + _cdot(fx, y.e, np.matmul)
        + k * np.matmul(fx, fy)
        + (2 * k - 1) * 1j
    )
    return Tracked(
        v.reshape(batch + (m, n)),
        e,
        np.matmul(x.a, y.a),
        (x, y),
        (
            lambda g: _batched(g, matrix_transpose(y)),
            lambda g: _batched(matrix_transpose(x), g),
        ),
    )


def tensordot(x, y, axes=2) -> Tracked:
    """Σ over the paired axes (the last ``axes`` of x with the first of y, or two lists): the
    operands flattened to matrices and multiplied by ``matmul``, exactly."""
    x, y = _wrap(x), _wrap(y)
    if isinstance(axes, int):
        pair_x, pair_y = list(range(x.ndim - axes, x.ndim)), list(range(axes))
    else:
        pair_x, pair_y = (
            [a % t.ndim for a in (side if isinstance(side, list | tuple) else [side])]
            for side, t in zip(axes, (x, y))
        )
    free_x = [i for i in range(x.ndim) if i not in pair_x]
    free_y = [i for i in range(y.ndim) if i not in pair_y]
    k = math.prod(x.shape[i] for i in pair_x)
    shape_x, shape_y = [x.shape[i] for i in free_x], [y.shape[i] for i in free_y]
    xm = reshape(permute_dims(x, free_x + pair_x), (math.prod(shape_x), k))
    ym = reshape(permute_dims(y, pair_y + free_y), (k, math.prod(shape_y)))
    return reshape(matmul(xm, ym), tuple(shape_x + shape_y))


def vecdot(x, y, axis=-1) -> Tracked:
    """Σ x·y along ``axis`` (real operands: no conjugate)."""
    return sum_(multiply(x, y), axis=axis)


def einsum(subscripts: str, *operands) -> Tracked:
    """Products summed over the indices ``subscripts`` names ("bij,bjk->bik"), as matrix
    products: two operands at a time, batch indices kept, shared indices summed. No
    ellipsis and no repeated index within one operand (a diagonal)."""
    inputs, output = _parse(subscripts, len(operands))
    tracked = [_wrap(x) for x in operands]
    for letters, x in zip(inputs, tracked):
        if len(set(letters)) != len(letters) or len(letters) != x.ndim:
            raise UnsupportedOperation(f"einsum {subscripts!r} (a diagonal or a wrong rank)")
    current, letters = tracked[0], inputs[0]
    for i in range(1, len(tracked)):
        keep = set(output).union(*inputs[i + 1 :])
        current, letters = _pair(current, letters, tracked[i], inputs[i], keep)
    current, letters = _sum_unused(current, letters, set(output))
    return permute_dims(current, [letters.index(c) for c in output])


def _parse(subscripts: str, count: int) -> tuple[list[str], str]:
    text = subscripts.replace(" ", "")
    if "." in text:
        raise UnsupportedOperation("einsum with an ellipsis")
    left, _, right = text.partition("->")
    inputs = left.split(",")
    if len(inputs) != count:
        raise UnsupportedOperation(f"einsum {subscripts!r} for {count} operands")
    if "->" not in text:  # implicit output: the indices that occur once, in order
        right = "".join(sorted(c for c in set(left) - {","} if left.count(c) == 1))
    return inputs, right


def _sum_unused(x: Tracked, letters: str, keep: set) -> tuple[Tracked, str]:
    unused = tuple(i for i, c in enumerate(letters) if c not in keep)
    if not unused:
        return x, letters
    return sum_(x, axis=unused), "".join(c for c in letters if c in keep)


def _pair(x: Tracked, lx: str, y: Tracked, ly: str, keep: set) -> tuple[Tracked, str]:
    """x (indices lx) times y (ly), summed over the shared indices not in ``keep``."""
    x, lx = _sum_unused(x, lx, keep | set(ly))
    y, ly = _sum_unused(y, ly, keep | set(lx))
    batch = [c for c in lx if c in ly and c in keep]
    shared = [c for c in lx if c in ly and c not in keep]
    only_x, only_y = [c for c in lx if c not in ly], [c for c in ly if c not in lx]
    size = {**dict(zip(ly, y.shape)), **dict(zip(lx, x.shape))}

    def flat(t: Tracked, letters: str, groups) -> Tracked:
        order = [letters.index(c) for group in groups for c in group]
        sizes = tuple(math.prod(size[c] for c in group) for group in groups)
        return reshape(permute_dims(t, order), sizes)

    product = matmul(flat(x, lx, (batch, only_x, shared)), flat(y, ly, (batch, shared, only_y)))
    letters = batch + only_x + only_y
    return reshape(product, tuple(size[c] for c in letters)), "".join(letters)
