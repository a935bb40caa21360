"""highprec's structural operations, reductions and products: values, gradients (the adjoint
of each linear map, exact), and the companions of the reductions."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from gradcmp.reference import highprec as hp

NO_DATA = (np.zeros((1, 1)), np.zeros(1))
RNG = np.random.default_rng(11)
A = RNG.integers(-9, 9, size=(2, 3, 4)).astype(float)


def _exact(node) -> np.ndarray:
    return np.array([hp.to_fraction(v) for v in node.v.ravel()], dtype=object).reshape(node.shape)


def _grad(op, *arrays):
    """The gradient of Σ W·op(arrays) (W: integer weights) and the weights."""
    with hp.working_precision():
        shape = op(*(hp.leaf(a) for a in arrays)).shape
    weights = RNG.integers(-5, 5, size=shape).astype(float)
    params = {f"a{i}": a for i, a in enumerate(arrays)}
    _, grads = hp.value_and_grad(
        lambda p, X, y, xp: hp.sum_(hp.multiply(op(*p.values()), weights)), params, *NO_DATA
    )
    return [grads[k] for k in params], weights


def _adjoint(np_op, arrays, weights, i, multilinear=False):
    """∂/∂arrays[i] of Σ W·np_op(arrays) for a linear map (the other operands 0) or a
    multilinear one (the others as they are), one basis vector at a time."""
    out = np.zeros(arrays[i].shape)
    for index in np.ndindex(arrays[i].shape):
        basis = [
            np.zeros(a.shape) if j == i or not multilinear else a for j, a in enumerate(arrays)
        ]
        basis[i][index] = 1.0
        out[index] = np.sum(weights * np_op(*basis))
    return out


LINEAR = {  # name: (highprec op, numpy op, operands)
    "permute_dims": (lambda a: hp.permute_dims(a, (2, 0, 1)), lambda a: a.transpose(2, 0, 1), [A]),
    "matrix_transpose": (hp.matrix_transpose, lambda a: np.swapaxes(a, -1, -2), [A]),
    "expand_dims": (lambda a: hp.expand_dims(a, 1), lambda a: a[:, None], [A]),
    "squeeze": (lambda a: hp.squeeze(a, 1), lambda a: a[:, 0], [A[:, :1]]),
    "concat": (lambda a, b: hp.concat([a, b], axis=1), lambda a, b: np.concat([a, b], 1), [A, A]),
    "concat-flat": (lambda a: hp.concat([a, a], axis=None), lambda a: np.concat([a, a], None), [A]),
    "stack": (lambda a, b: hp.stack([a, b], axis=-1), lambda a, b: np.stack([a, b], -1), [A, A]),
    "take": (lambda a: hp.take(a, [0, 2, 0], axis=1), lambda a: np.take(a, [0, 2, 0], 1), [A]),
    "take-flat": (lambda a: hp.take(a, [5, 1, 5]), lambda a: np.take(a, [5, 1, 5]), [A]),
    "flip": (lambda a: hp.flip(a, axis=2), lambda a: np.flip(a, 2), [A]),
    "repeat": (lambda a: hp.repeat(a, 2, axis=0), lambda a: np.repeat(a, 2, 0), [A]),
    "moveaxis": (lambda a: hp.moveaxis(a, 0, -1), lambda a: np.moveaxis(a, 0, -1), [A]),
    "cumulative_sum": (
        lambda a: hp.cumulative_sum(a, axis=1),
        lambda a: np.cumulative_sum(a, axis=1),
        [A],
    ),
    "cumulative_sum-initial": (
        lambda a: hp.cumulative_sum(a, axis=2, include_initial=True),
        lambda a: np.cumulative_sum(a, axis=2, include_initial=True),
        [A],
    ),
    "sum": (lambda a: hp.sum_(a, axis=(0, 2)), lambda a: np.sum(a, (0, 2)), [A]),
    "broadcast_to": (
        lambda a: hp.broadcast_to(a, (5, 2, 3, 4)),
        lambda a: a + np.zeros((5, 1, 1, 1)),
        [A],
    ),
}


@pytest.mark.parametrize("name", LINEAR)
def test_linear_maps_values_and_adjoint_gradients(name):
    op, np_op, arrays = LINEAR[name]
    with hp.working_precision():
        z = op(*(hp.leaf(a) for a in arrays))
    np.testing.assert_array_equal(z.f, np_op(*arrays))
    grads, weights = _grad(op, *arrays)
    for i, g in enumerate(grads):
        np.testing.assert_array_equal(g.f, _adjoint(np_op, arrays, weights, i))


def test_cumulative_sum_charges_each_running_sum_its_additions():
    x = np.array([1.0, -2.0, 4.0, 0.5])
    with hp.working_precision():
        z = hp.cumulative_sum(hp.leaf(x))
    terms = np.cumsum(np.abs(x))
    np.testing.assert_array_equal(z.e, np.arange(4) * (terms + 1j))


@pytest.mark.parametrize(
    ("values", "weights"),
    [
        ([1.0, 3.0, 3.0, 2.0], [0, Fraction(1, 2), Fraction(1, 2), 0]),
        ([5.0, 5.0, 5.0], [Fraction(1, 3)] * 3),
        ([-1.0, 7.0, 2.0], [0, 1, 0]),
    ],
)
def test_max_and_min_are_exact_and_split_ties_evenly(values, weights):
    x = np.array(values)
    for op, sign in ((hp.max_, 1), (hp.min_, -1)):
        out, grads = hp.value_and_grad(
            lambda p, X, y, xp, op=op: op(p["a"]), {"a": sign * x}, *NO_DATA
        )
        assert hp.to_fraction(out.v[()]) == sign * max(values)
        got = _exact(grads["a"])
        assert all(abs(g - w) <= Fraction(1, 10**55) for g, w in zip(got, weights))


def test_max_error_is_the_largest_of_the_elements_errors():
    with hp.working_precision():
        x = hp.multiply(hp.leaf(A), hp.leaf(np.full(A.shape, 0.1)))  # one rounding each
        z = hp.max_(x, axis=1, keepdims=True)
    assert z.shape == (2, 1, 4)
    np.testing.assert_array_equal(z.f, np.max(x.f, axis=1, keepdims=True))
    np.testing.assert_array_equal(z.e.real, np.max(x.e.real, axis=1, keepdims=True))
    np.testing.assert_array_equal(z.a, np.max(x.a, axis=1, keepdims=True))


def test_prod_values_and_gradient_with_a_zero():
    x = np.array([[2.0, 0.0, 3.0], [1.5, -2.0, 0.25]])
    out, grads = hp.value_and_grad(
        lambda p, X, y, xp: hp.sum_(hp.prod(p["a"], axis=1)), {"a": x}, *NO_DATA
    )
    assert hp.to_fraction(out.v[()]) == Fraction(-3, 4)
    expected = [[0, 6, 0], [Fraction(-1, 2), Fraction(3, 8), -3]]
    assert _exact(grads["a"]).tolist() == expected
    with hp.working_precision():
        z = hp.prod(hp.leaf(x), axis=1, keepdims=True)
        empty = hp.prod(hp.leaf(np.zeros((2, 0))), axis=1)
    assert z.shape == (2, 1) and empty.f.tolist() == [1.0, 1.0]
    # two roundings of |Π| per row (k − 1 = 2), whatever the order
    np.testing.assert_allclose(z.e.real[:, 0], 2 * np.abs(np.prod(x, axis=1)))


@pytest.mark.parametrize("correction", [0, 1])
def test_var_and_std_against_mpmath_and_their_gradients(correction):
    mpmath = pytest.importorskip("mpmath")
    x = RNG.normal(size=(3, 5))
    out, grads = hp.value_and_grad(
        lambda p, X, y, xp: hp.sum_(hp.var(p["a"], axis=1, correction=correction)),
        {"a": x},
        *NO_DATA,
    )
    with mpmath.workprec(300):
        rows = [[mpmath.mpf(v) for v in row] for row in x]
        means = [sum(r) / len(r) for r in rows]
        total = sum(
            sum((v - m) ** 2 for v in r) / (len(r) - correction) for r, m in zip(rows, means)
        )
        exact = hp.to_fraction(total)
        assert abs(hp.to_fraction(out.v[()]) - exact) <= exact / 10**55
        for i, (r, m) in enumerate(zip(rows, means)):
            for j, v in enumerate(r):
                want = hp.to_fraction(2 * (v - m) / (len(r) - correction))
                assert abs(hp.to_fraction(grads["a"].v[i, j]) - want) <= abs(want) / 10**50
    with hp.working_precision():
        s = hp.std(hp.leaf(x), axis=0, correction=correction, keepdims=True)
    np.testing.assert_allclose(s.f, np.std(x, axis=0, ddof=correction, keepdims=True), rtol=1e-15)


@pytest.mark.parametrize("order", [2, 1, np.inf, -np.inf, 3])
def test_vector_norm(order):
    x = RNG.normal(size=(3, 4))
    with hp.working_precision():
        z = hp.vector_norm(hp.leaf(x), axis=1, ord=order)
    np.testing.assert_allclose(z.f, np.linalg.vector_norm(x, axis=1, ord=order), rtol=1e-15)
    if order == 2:
        _, grads = hp.value_and_grad(lambda p, X, y, xp: hp.vector_norm(p["a"]), {"a": x}, *NO_DATA)
        np.testing.assert_allclose(grads["a"].f, x / np.linalg.norm(x), rtol=1e-15)


# --- Batched matrix products, tensordot, einsum ---------------------------------------------


def _products_by_elements(monkeypatch):
    """Make every product go the element-by-element way (tracked products and sums)."""
    monkeypatch.setattr(hp.products, "matmul", hp.products._matmul_by_products)


@pytest.mark.parametrize(
    ("x_shape", "y_shape"),
    [
        ((2, 3, 4), (2, 4, 5)),
        ((3, 4), (2, 4, 5)),
        ((4,), (2, 4, 5)),
        ((2, 1, 3, 4), (3, 4, 2)),
        ((2, 3, 4), (4,)),
    ],
)
def test_batched_matmul_is_exact_and_matches_the_element_by_element_path(
    x_shape, y_shape, monkeypatch
):
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=x_shape), rng.normal(size=y_shape)
    with hp.working_precision():
        z = hp.matmul(hp.leaf(x), hp.leaf(y))
    exact = np.matmul(
        np.vectorize(Fraction, otypes=[object])(x), np.vectorize(Fraction, otypes=[object])(y)
    )
    assert z.shape == exact.shape
    # each element the exact sum of the exact products, rounded once (half an ulp of 200 bits)
    assert all(
        abs(hp.to_fraction(v) - q) <= abs(q) / 2**200 for v, q in zip(z.v.ravel(), exact.ravel())
    )

    def loss(p, X, Y, xp):
        return hp.sum_(hp.tanh(p["x"] @ p["y"]))

    fast = hp.value_and_grad(loss, {"x": x, "y": y}, *NO_DATA)
    _products_by_elements(monkeypatch)
    slow = hp.value_and_grad(loss, {"x": x, "y": y}, *NO_DATA)
    for a, b in [(fast[0], slow[0]), (fast[1]["x"], slow[1]["x"]), (fast[1]["y"], slow[1]["y"])]:
        assert a.shape == b.shape
        difference = _exact(a) - _exact(b)
        assert all(
            abs(d) <= Fraction(s) / 10**55 for d, s in zip(np.ravel(difference), a.a.ravel())
        )
        if x.ndim == y.ndim:
            # Where an operand was broadcast, its gradient sums over the batch in another
            # grouping than the products' path (both valid bounds, not the same numbers).
            np.testing.assert_allclose(a.e.real, b.e.real, rtol=1e-12)
            np.testing.assert_allclose(a.a, b.a, rtol=1e-12)


@pytest.mark.parametrize(
    ("subscripts", "shapes"),
    [
        ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
        ("bhtd,bhsd->bhts", [(2, 2, 3, 4), (2, 2, 5, 4)]),  # attention scores
        ("ij->ji", [(3, 4)]),
        ("i,i->", [(4,), (4,)]),
        ("ij,j", [(3, 4), (4,)]),
        ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
        ("ijk->j", [(2, 3, 4)]),
        ("bi,bj->bij", [(2, 3), (2, 4)]),  # outer products
    ],
)
def test_einsum_against_numpy_and_its_gradient(subscripts, shapes):
    rng = np.random.default_rng(13)
    arrays = [rng.normal(size=s) for s in shapes]
    with hp.working_precision():
        z = hp.einsum(subscripts, *(hp.leaf(a) for a in arrays))
    np.testing.assert_allclose(z.f, np.einsum(subscripts, *arrays), rtol=1e-13, atol=1e-14)
    op = lambda *xs: hp.einsum(subscripts, *xs)  # noqa: E731
    grads, weights = _grad(op, *arrays)
    for i, g in enumerate(grads):
        expected = _adjoint(
            lambda *xs: np.einsum(subscripts, *xs), arrays, weights, i, multilinear=True
        )
        np.testing.assert_allclose(g.f, expected, rtol=1e-13, atol=1e-13)


def test_tensordot_and_vecdot():
    rng = np.random.default_rng(14)
    x, y = rng.normal(size=(2, 3, 4)), rng.normal(size=(4, 3, 5))
    with hp.working_precision():
        z = hp.tensordot(hp.leaf(x), hp.leaf(y), axes=([1, 2], [1, 0]))
        d = hp.vecdot(hp.leaf(x), hp.leaf(x[0]))
        two = hp.tensordot(hp.leaf(x), hp.leaf(x), axes=3)
    np.testing.assert_allclose(z.f, np.tensordot(x, y, axes=([1, 2], [1, 0])), rtol=1e-13)
    np.testing.assert_allclose(d.f, np.sum(x * x[0], axis=-1), rtol=1e-13)
    np.testing.assert_allclose(two.f, np.sum(x * x), rtol=1e-15)


def test_einsum_refuses_a_diagonal():
    with hp.working_precision(), pytest.raises(hp.UnsupportedOperation):
        hp.einsum("ii->i", hp.leaf(np.eye(3)))


def test_only_values_given_as_floats_are_known_to_be_floats():
    """``floats_exact`` lets a matrix product skip comparing 10⁵ values with their float64
    roundings; it must hold only where it is true, and moving values keeps it."""
    from gradcmp.reference.highprec.limbs import _exact_matmul

    rng = np.random.default_rng(3)
    with hp.working_precision():
        w = hp.leaf(rng.normal(size=(4, 3)))
        assert w.floats_exact and hp.constant(np.ones(3)).floats_exact
        for moved in (w.T, hp.reshape(w, (3, 4)), hp.broadcast_to(w, (2, 4, 3))):
            assert moved.floats_exact
        computed = hp.tanh(w)  # 200-bit values, not floats
        assert not computed.floats_exact and not hp.transpose(computed).floats_exact
        assert not hp.leaf(np.array([Fraction(1, 3)], dtype=object)).floats_exact
        x = hp.leaf(rng.normal(size=(5, 4)))
        known = _exact_matmul(x.v, x.f, w.v, w.f, (True, True))
        checked = _exact_matmul(x.v, x.f, w.v, w.f, (False, False))
        assert np.array_equal(known, checked)
        # the product of a 200-bit left side and float weights, flagged or found
        h = hp.tanh(x)
        assert np.array_equal(
            _exact_matmul(h.v, h.f, w.v, w.f, (False, True)),
            _exact_matmul(h.v, h.f, w.v, w.f, (False, False)),
        )
