"""The high-precision reference for any loss: its values, its bound, its fallback."""

from __future__ import annotations

import dataclasses
import textwrap
from fractions import Fraction

import gmpy2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import make_problem
from hypothesis import example, given, settings
from hypothesis import strategies as st

import gradcmp
from gradcmp.cli import cli
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.agreement import DISAGREE, INCONCLUSIVE
from gradcmp.judging.runner import OK, run
from gradcmp.models import get_model
from gradcmp.problem import Problem
from gradcmp.reference import highprec
from gradcmp.reference.compute import compute_reference

# The linear model with its exact reference taken away: it goes through highprec instead.
GENERIC_LINEAR = dataclasses.replace(
    get_model("linear"), exact=None, magnitudes=None, rounding_depth=None, underflow_weights=None
)

LOGISTIC = textwrap.dedent(
    '''
    PARAMS = {"b": 0.1, "w": [0.5, -0.25]}

    def loss(params, X, y, xp):
        """mean(log(1 + exp(z)) − y·z), z = b + X·w: binary cross-entropy with logits"""
        z = params["b"] + X @ params["w"]
        return xp.mean(xp.logaddexp(0.0, z) - y * z)
    '''
)


def test_highprec_matches_the_exact_reference_to_50_digits():
    rng = np.random.default_rng(3)
    problem = make_problem(
        rng.normal(size=(40, 3)), rng.normal(size=40), {"theta0": 0.3, "theta1": rng.normal(size=3)}
    )
    exact = compute_reference(problem, [FLOAT64]).by_dtype["float64"]
    generic = compute_reference(Problem(GENERIC_LINEAR, problem.data, problem.params), [FLOAT64])
    assert generic.name == "highprec"
    for name, value in generic.by_dtype["float64"].outputs().items():
        assert abs(value - exact.outputs()[name]) <= abs(exact.outputs()[name]) * Fraction(
            1, 10**50
        )


def test_highprec_gradient_of_logistic_matches_the_formula():
    # d/dz [log(1 + e^z) − y·z] = σ(z) − y, so ∂L/∂w = mean((σ(z) − y)·x).
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 2)), (rng.random(30) < 0.5).astype(float)
    namespace: dict = {}
    exec(LOGISTIC, namespace)
    params = {"b": np.array(0.1), "w": np.array([0.5, -0.25])}
    out, grads = highprec.value_and_grad(namespace["loss"], params, X, y)
    z = 0.1 + X @ params["w"]
    sigma = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(float(out.v[()]), np.mean(np.logaddexp(0, z) - y * z), rtol=1e-14)
    np.testing.assert_allclose(
        grads["w"].v.astype(float), ((sigma - y)[:, None] * X).mean(0), rtol=1e-13
    )


def small_problem(n: int, scale_exp: int, cancel: bool, seed: int):
    """n rows of 2 features at scale 10**scale_exp; with ``cancel``, y is the fit ± 1e-6."""
    scale = 10.0**scale_exp
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2)) * scale
    w = rng.normal(size=2) / scale
    y = X @ w + 0.5 + (rng.normal(size=n) * 1e-6 if cancel else rng.normal(size=n))
    return X, y, w


@st.composite
def small_problems(draw):
    n = draw(st.integers(1, 200))
    scale_exp = draw(st.integers(-4, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    return small_problem(n, scale_exp, draw(st.booleans()), seed)


# A new shape costs seconds (jax-grad compiles it, in both dtypes): a few random examples, and
# always the most rows with heavy cancellation at both extreme scales (one shape: the second
# costs little).
@settings(max_examples=4)
@example(case=small_problem(200, 4, cancel=True, seed=1))
@example(case=small_problem(200, -4, cancel=True, seed=2))
@given(case=small_problems())
def test_no_false_alarms_with_the_running_bound(tmp_path_factory, case):
    X, y, w = case
    linear = make_problem(X, y, {"theta0": 0.5, "theta1": w})
    problems = [Problem(GENERIC_LINEAR, linear.data, linear.params)]
    path = tmp_path_factory.mktemp("loss") / "logistic.py"
    path.write_text(LOGISTIC)
    labels = (y > np.median(y)).astype(float)
    report = gradcmp.compare(
        (X, labels), loss=path, params={"w": w}, backends=["torch-grad", "jax-grad"]
    )
    for result in [
        *run(problems[0], ["native", "torch-grad", "jax-grad"], [FLOAT32, FLOAT64]).results,
        *report.results,
    ]:
        assert result.status == OK, result.note
        assert result.verdict != DISAGREE, (result.backend, result.dtype, result.why)


def test_an_operation_beyond_highprec_falls_back_to_float64_without_a_bound(tmp_path):
    path = tmp_path / "sinc.py"
    path.write_text(
        textwrap.dedent(
            """
        PARAMS = {"w": 0.5}

        def loss(params, X, y, xp):
            return xp.mean(xp.sinc(params["w"] * X[:, 0]) - y)
        """
        )
    )
    report = gradcmp.compare(gradcmp.loading.data.bundled_path(), loss=path, backends=["jax-grad"])
    assert report.reference.name == "float64"
    assert "xp.sinc is not in gradcmp's reference namespace" in report.reference.method
    assert {r.verdict for r in report.results} == {INCONCLUSIVE}
    assert report.exit_code == 0


@pytest.mark.parametrize("power", [2, 3, 0.5])
def test_powers(power):
    x = np.array([1.5, 2.0, 4.0])
    out, grads = highprec.value_and_grad(
        lambda p, X, y, xp: xp.sum(p["a"] ** power), {"a": x}, x[:, None], x
    )
    np.testing.assert_allclose(grads["a"].v.astype(float), power * x ** (power - 1), rtol=1e-15)


# --- The MPFR engine: exact matrix products, the same rules, the same exceptions ------------


def _tracked(rng, shape, kind):
    """A leaf of random values: float64 ones, or 200-bit ones (x/3 of Fractions), over a
    narrow or a wide range of binary orders, with zeros, or with a row that spans 2000 binary
    orders (beyond the limbs: element by element)."""
    values = rng.normal(size=shape)
    if kind == "wide":
        values = values * 10.0 ** rng.integers(-40, 40, size=shape)
    if kind == "zeros":
        values.reshape(-1)[::3] = 0.0
    if kind == "spread":
        values.reshape(-1)[:2] = 1e300, 1e-300  # in one row: 2000 bits apart
    if kind in ("hp", "wide"):
        return highprec.leaf(np.array([Fraction(v) / 3 for v in values.ravel()]).reshape(shape))
    return highprec.leaf(values)


def _rounded_once(q: Fraction):
    """q rounded to the working precision, once (MPFR rounds to nearest)."""
    return gmpy2.mpfr(gmpy2.mpq(q.numerator, q.denominator)) if q else gmpy2.mpfr(0)


@pytest.mark.parametrize(
    ("x_shape", "y_shape", "x_kind", "y_kind"),
    [
        ((6, 9), (9, 5), "float", "float"),
        ((6, 9), (9, 5), "hp", "float"),
        ((4, 40), (40, 3), "hp", "hp"),  # k > 32: 16-bit limbs
        ((5, 7), (7, 4), "wide", "zeros"),
        ((7,), (7, 3), "hp", "wide"),
        ((3, 7), (7,), "zeros", "hp"),
        ((7,), (7,), "hp", "hp"),
        ((3, 5), (5, 2), "spread", "hp"),  # element by element, in order
    ],
)
def test_matrix_products_are_the_exact_sums_rounded_once(x_shape, y_shape, x_kind, y_kind):
    rng = np.random.default_rng(7)
    with highprec._working_precision(), np.errstate(all="ignore"):
        x, y = _tracked(rng, x_shape, x_kind), _tracked(rng, y_shape, y_kind)
        z = highprec.matmul(x, y)
        k = x_shape[-1]
        by_limbs = highprec._exact_matmul(
            x.v.reshape(-1, k), x.f.reshape(-1, k), y.v.reshape(k, -1), y.f.reshape(k, -1)
        )
        assert (by_limbs is None) == (x_kind == "spread")
        X = np.array([highprec.to_fraction(v) for v in x.v.ravel()], dtype=object)
        Y = np.array([highprec.to_fraction(v) for v in y.v.ravel()], dtype=object)
        exact = np.dot(X.reshape(x_shape), Y.reshape(y_shape))
        size = np.dot(np.abs(X.reshape(x_shape)), np.abs(Y.reshape(y_shape)))
        assert z.shape == np.shape(exact)
        for value, want, terms in zip(z.v.ravel(), np.ravel(exact), np.ravel(size)):
            if x_kind != "spread":
                assert value == _rounded_once(want)
            else:  # each product and partial sum rounded: within k·2**-199 of the terms
                assert abs(highprec.to_fraction(value) - want) <= k * terms / 2**199


def _mlp_loss(params, X, y, xp):
    h = xp.tanh(xp.matmul(X, params["W1"]) + params["b1"])
    h = xp.tanh(h @ params["W2"])
    return xp.mean((h @ params["w"] - y) ** 2) / 2 + params["v"] @ params["v"]


def test_the_matrix_product_node_carries_what_the_elementwise_rules_give(monkeypatch):
    """One matmul node (exact products by limbs, companions by float64 matrix products)
    against the tracked products and their tracked sum: the same values to 55 digits, the same
    error coefficients and magnitudes to float64 rounding, forward and backward."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(6, 3)), rng.normal(size=6)
    params = {
        "W1": rng.normal(size=(3, 5)),
        "b1": rng.normal(size=5),
        "W2": rng.normal(size=(5, 4)) * 1e-3,
        "w": rng.normal(size=4),
        "v": rng.normal(size=2),
    }
    products = highprec.products
    limb_products = []

    def counted(*args):
        limb_products.append(args)
        return exact_matmul(*args)

    exact_matmul = products._exact_matmul
    monkeypatch.setattr(products, "_exact_matmul", counted)
    fast = highprec.value_and_grad(_mlp_loss, params, X, y)
    assert limb_products  # the fast side did take the exact path
    # `@` and xp.matmul look up products.matmul at each call: swap in the element-by-element
    # products, and make sure no limb product is left on the slow side.
    monkeypatch.setattr(products, "matmul", products._matmul_by_products)
    monkeypatch.setattr(products, "_exact_matmul", None)
    slow = highprec.value_and_grad(_mlp_loss, params, X, y)
    for a, b in [(fast[0], slow[0]), *((fast[1][k], slow[1][k]) for k in params)]:
        values_a = np.array([highprec.to_fraction(v) for v in a.v.ravel()], dtype=object)
        values_b = np.array([highprec.to_fraction(v) for v in b.v.ravel()], dtype=object)
        scale = np.maximum(a.a.ravel(), 1e-300)
        assert all(abs(d) <= Fraction(s) / 10**55 for d, s in zip(values_a - values_b, scale))
        np.testing.assert_allclose(a.e.real, b.e.real, rtol=1e-12)
        np.testing.assert_allclose(a.e.imag, b.e.imag, rtol=1e-12)
        np.testing.assert_allclose(a.a, b.a, rtol=1e-12)


def test_the_mlp_gradient_matches_backpropagation_in_mpmath():
    """An independent computation: the MLP's backpropagation by hand, in mpmath at 300 bits."""
    mpmath = pytest.importorskip("mpmath")
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    W1, b1, w = rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=4)
    model = get_model("mlp")
    out, grads = highprec.value_and_grad(
        model.loss, {"W1": W1, "b1": b1, "w_out": w, "b_out": np.array(0.25)}, X, y
    )
    with mpmath.workprec(300):
        mp = np.vectorize(mpmath.mpf, otypes=[object])
        Xm, W1m, b1m, wm = mp(X), mp(W1), mp(b1), mp(w)
        h = np.vectorize(mpmath.tanh, otypes=[object])(Xm @ W1m + b1m)
        r = h @ wm + mpmath.mpf(0.25) - mp(y)
        n = len(y)
        expected = {
            "loss": [sum(r * r) / (2 * n)],
            "b_out": [sum(r) / n],
            "w_out": list(h.T @ r / n),
        }
        delta = np.outer(r, wm) * (1 - h * h) / n
        expected["b1"] = list(delta.sum(axis=0))
        expected["W1"] = list((Xm.T @ delta).ravel())
        got = {"loss": [out.v[()]], **{k: list(g.v.ravel()) for k, g in grads.items()}}
        for name, values in expected.items():
            for mine, theirs in zip(got[name], values):
                exact = highprec.to_fraction(mpmath.mpf(theirs))  # (an mpf: exact)
                assert abs(highprec.to_fraction(mine) - exact) <= abs(exact) / 10**55, name


@pytest.mark.parametrize(
    ("expression", "w", "raised"),
    [
        ("xp.log(p['w'] * X[:, 0])", 0.0, highprec.NotDifferentiable),
        ("xp.log(p['w'] * X[:, 0])", -1.0, highprec.UnsupportedOperation),  # complex
        ("xp.sqrt(p['w'] * p['w'])", 0.0, highprec.NotDifferentiable),  # slope ∞
        ("xp.sqrt(p['w'] * X[:, 0])", -1.0, highprec.UnsupportedOperation),
        ("1 / (p['w'] * X[:, 0])", 0.0, highprec.NotDifferentiable),
        ("(p['w'] * X[:, 0]) / (p['w'] * X[:, 0])", 0.0, highprec.NotDifferentiable),  # 0/0
        ("(p['w'] * X[:, 0]) ** 0.5", -1.0, highprec.UnsupportedOperation),
        ("(p['w'] * X[:, 0]) ** -1.0", 0.0, highprec.NotDifferentiable),
        ("xp.log1p(p['w'] * X[:, 0])", -1.0, highprec.UnsupportedOperation),  # −2 too
        ("xp.log1p(p['w'] * X[:, 0] / 2)", -1.0, highprec.NotDifferentiable),  # −½, −1
        ("xp.sinc(p['w'])", 0.5, highprec.UnsupportedOperation),  # not in the namespace
        ("xp.arcsin(p['w'] * X[:, 0])", 0.75, highprec.UnsupportedOperation),  # arcsin 1.5
    ],
)
def test_what_has_no_reference_raises_as_before(expression, w, raised):
    loss = eval(f"lambda p, X, y, xp: xp.mean({expression})")
    X, y = np.array([[1.0], [2.0]]), np.array([0.5, -1.0])
    with pytest.raises(raised):
        highprec.value_and_grad(loss, {"w": np.array(w)}, X, y)


def test_to_fraction_is_exact():
    mpmath = pytest.importorskip("mpmath")
    with highprec._working_precision():
        third = gmpy2.mpfr(1) / 3
    q = highprec.to_fraction(third)
    assert q.denominator == 2 ** (q.denominator.bit_length() - 1)  # a binary fraction
    assert abs(q - Fraction(1, 3)) <= Fraction(1, 3) / 2**200
    assert highprec.to_fraction(gmpy2.mpfr(0.1)) == Fraction(0.1)
    assert highprec.to_fraction(0.1) == Fraction(0.1)
    assert highprec.to_fraction(-0.0) == 0
    with mpmath.workprec(200):
        assert highprec.to_fraction(mpmath.mpf(1) / 3) == q
    with pytest.raises(ValueError, match="inf"):
        highprec.to_fraction(gmpy2.mpfr("inf"))


def test_the_blas_thread_count_is_restored():
    calls = highprec._blas_thread_calls()
    if calls is None:
        pytest.skip("numpy's BLAS is not the OpenBLAS of its wheel")
    before = calls[0]()
    highprec.value_and_grad(
        lambda p, X, y, xp: xp.sum(X @ p["a"]), {"a": np.ones(2)}, np.ones((3, 2)), np.ones(3)
    )
    assert calls[0]() == before


def test_a_slope_infinite_only_in_the_data_does_not_matter():
    """√x at x = 0 has an infinite slope in x; the gradient is taken in the parameters only."""
    out, grads = highprec.value_and_grad(
        lambda p, X, y, xp: xp.mean(p["w"] * xp.sqrt(X[:, 0])),
        {"w": np.array(1.5)},
        np.array([[0.0], [4.0]]),
        np.array([0.5, -1.0]),
    )
    assert highprec.to_fraction(out.v[()]) == Fraction(3, 2)
    assert highprec.to_fraction(grads["w"].v[()]) == 1


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ONE_ROW = "x,y\n626.4636944209259,0\n"


@pytest.mark.parametrize(
    ("loss", "params"),
    [
        # logaddexp of a far-apart pair: the small weight exp(b − z) ≈ 4e-18 must survive
        (
            "return xp.mean(xp.logaddexp(params['a'] + 40.0 + 0 * X[:, 0], params['b'] + 0 * y))",
            {"a": 0.0, "b": 0.0},
        ),
        # exp reused in its own backward rule: its forward error counts there too
        ("return xp.sum(xp.exp(params['a'] * X[:, 0] / 600))", {"a": 0.9541278616511861}),
    ],
)
def test_highprec_bounds_hold_on_a_far_apart_logaddexp_and_a_reused_exp(tmp_path, loss, params):
    path = write(
        tmp_path, "loss.py", f"PARAMS = {params!r}\ndef loss(params, X, y, xp):\n    {loss}\n"
    )
    data = write(tmp_path, "one.csv", ONE_ROW)
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--loss",
            path,
            "--data",
            data,
            "--dtype",
            "float64",
            "-b",
            "torch-grad,jax-grad,jax-jit",
        ],
    )
    assert result.exit_code == 0, result.output


def test_the_float64_fallback_differentiates_the_spec_not_a_side(tmp_path):
    path = write(
        tmp_path,
        "sinc.py",
        (  # sinc is in neither the reference's namespace nor the torch tracer's rules
            "PARAMS = {'w': 0.5}\n"
            "def loss(params, X, y, xp):\n"
            "    r = xp.sinc(params['w'] * X[:, 0]) - y\n"
            "    return xp.mean(r * r)\n"
            "def loss_torch(params, X, y):\n"
            "    import torch\n"
            "    r = torch.sinc(params['w'] * X[:, 0]) - y\n"
            "    return torch.mean(r * r) * 2  # planted bug on the torch side\n"
        ),
    )
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=path,
        backends=["torch-grad", "jax-grad"],
        dtypes="float64",
    )
    assert report.reference.name == "float64"
    judged = {r.backend: r.reference for r in report.results}
    assert judged == {"jax-grad": "float64", "torch-grad": "loss_torch"}  # its own graph
    errors = {r.backend: r.errors["loss"].rel for r in report.results}
    assert errors["jax-grad"] < 1e-15  # the spec's float64 autodiff is the jax row's
    # The torch side computes another function than the spec: their float64 rows say so.
    assert report.port.verdict == "different" and report.exit_code == 1
    assert report.port.note.startswith("loss_torch and loss compute different functions")
