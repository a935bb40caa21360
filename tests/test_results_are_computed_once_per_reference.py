"""Within one reference, an exact matrix product of the same two matrices, the same
elementwise function of the same values and the conversion of the same floats are computed
once (a faithful port's sides and its generic loss do the same work): the same values as
computing them again, never a result of other operands, one mode's trap never hidden by the
other's result, and nothing kept past the reference."""

from __future__ import annotations

import contextlib
import textwrap

import numpy as np
import pytest

import gradcmp
from gradcmp.reference import highprec as hp
from gradcmp.reference.highprec import elementwise, limbs
from gradcmp.reference.highprec import remembered as memory


@pytest.fixture
def computed(monkeypatch):
    """The products actually computed (not remembered), by operand shapes."""
    calls = []
    original = limbs._compute_exact_matmul

    def counting(xv, xf, yv, yf, exact):
        calls.append((xv.shape, yv.shape))
        return original(xv, xf, yv, yf, exact)

    monkeypatch.setattr(limbs, "_compute_exact_matmul", counting)
    return calls


def test_the_same_product_is_computed_once_within_the_scope(computed):
    rng = np.random.default_rng(0)
    with hp.working_precision():
        x, w = hp.leaf(rng.normal(size=(5, 4))), hp.leaf(rng.normal(size=(4, 3)))
        h = hp.tanh(x)  # 200-bit values
        alone = hp.matmul(h, w).v
        assert len(computed) == 1
        with hp.results_remembered():
            first = hp.matmul(h, w)
            first.v[0, 0] = hp.tracked._ZERO  # the caller's array: the remembered one stays
            again = hp.matmul(hp.tanh(x), hp.transpose(hp.transpose(w)))  # equal, rebuilt
            assert len(computed) == 2  # the second was remembered
            assert np.array_equal(again.v, alone)
            again.v[0, 0] = hp.tracked._ZERO  # a remembered product handed out: a copy too
            assert np.array_equal(hp.matmul(h, w).v, alone) and len(computed) == 2
        hp.matmul(h, w)  # the scope is over: computed again
        assert len(computed) == 3


def test_operands_with_the_same_floats_but_other_values_are_not_confused(computed):
    """The key is the operands' float64 roundings; a match is confirmed value by value."""
    rng = np.random.default_rng(1)
    with hp.working_precision(), hp.results_remembered():
        x, w = hp.leaf(rng.normal(size=(3, 4))), hp.leaf(rng.normal(size=(4, 2)))
        tiny = hp.leaf(np.full((3, 4), 2.0**-80))
        nudged = hp.add(x, hp.multiply(tiny, x))  # x·(1 + 2⁻⁸⁰): the same floats
        assert np.array_equal(nudged.f, x.f) and not np.array_equal(nudged.v, x.v)
        plain, other = hp.matmul(x, w).v, hp.matmul(nudged, w).v
        assert len(computed) == 2
        assert not np.array_equal(plain, other)
        assert np.array_equal(other, hp.matmul(nudged, w).v) and len(computed) == 2


@pytest.fixture
def evaluated(monkeypatch):
    """The elementwise functions actually evaluated (not remembered)."""
    calls = []
    original = elementwise._elementwise

    def counting(fn, values, *args, **kwargs):
        calls.append(fn)
        return original(fn, values, *args, **kwargs)

    monkeypatch.setattr(elementwise, "_elementwise", counting)
    return calls


def test_the_same_function_of_the_same_values_is_evaluated_once_within_the_scope(evaluated):
    rng = np.random.default_rng(2)
    floats = rng.normal(size=(10, 10))
    with hp.working_precision():
        alone = hp.tanh(hp.leaf(floats)).v
        with hp.results_remembered():
            first = hp.tanh(hp.leaf(floats))
            first.v[0, 0] = hp.tracked._ZERO  # the caller's array: the remembered one stays
            again = hp.tanh(hp.leaf(floats.copy()))  # equal values, another array
            assert evaluated == [hp.tracked.gmpy2.tanh] * 2
            assert np.array_equal(again.v, alone)
            hp.exp(hp.leaf(floats))  # another function: evaluated
            assert len(evaluated) == 3
            with hp.working_precision(ieee=True):  # all finite: serves a port's side too
                assert np.array_equal(hp.tanh(hp.leaf(floats)).v, alone)
            assert len(evaluated) == 3
            small = floats[:2, :2]  # below REMEMBERED_SIZE: always evaluated
            hp.tanh(hp.leaf(small)), hp.tanh(hp.leaf(small))
            assert len(evaluated) == 5
        hp.tanh(hp.leaf(floats))  # the scope is over: evaluated again
        assert len(evaluated) == 6


def test_values_with_the_same_floats_are_not_confused(evaluated):
    rng = np.random.default_rng(3)
    with hp.working_precision(), hp.results_remembered():
        x = hp.leaf(rng.normal(size=(8, 8)))
        nudged = hp.add(x, hp.multiply(hp.leaf(np.full((8, 8), 2.0**-80)), x))
        assert np.array_equal(nudged.f, x.f) and not np.array_equal(nudged.v, x.v)
        plain, other = hp.tanh(x).v, hp.tanh(nudged).v
        assert len(evaluated) == 2 and not np.array_equal(plain, other)


def test_a_result_that_is_not_finite_never_hides_a_trap(evaluated):
    """IEEE mode makes log 0 = −∞; the generic loss's mode must still refuse it."""
    floats = np.abs(np.random.default_rng(4).normal(size=(8, 8)))
    floats[3, 3] = 0.0
    with hp.results_remembered():
        with hp.working_precision(ieee=True):
            assert hp.log(hp.leaf(floats)).f[3, 3] == -np.inf
        with hp.working_precision(), pytest.raises(ArithmeticError):
            hp.log(hp.leaf(floats))
    assert len(evaluated) == 2


def test_a_result_is_only_served_to_the_context_it_was_made_in(evaluated):
    """Rounding, exponent range, traps and precision are part of the key: a result made in
    one context is never another's."""
    import gmpy2

    x, big = np.linspace(0.1, 2, 64), np.full(64, 700.0)
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(8, 9)) / 3, rng.normal(size=(9, 8)) / 7

    def alone(context, compute):  # outside the scope: computed in that context
        with hp.working_precision(), gmpy2.context(gmpy2.get_context(), **context):
            return compute()

    contexts = ({"round": gmpy2.RoundDown}, {"precision": 60})
    expected = [
        (
            alone(context, lambda: hp.exp(hp.leaf(x)).v),
            alone(context, lambda: hp.matmul(hp.leaf(a), hp.leaf(b)).v),
        )
        for context in contexts
    ]
    with hp.results_remembered(), hp.working_precision():
        hp.exp(hp.leaf(x)), hp.exp(hp.leaf(big)), hp.matmul(hp.leaf(a), hp.leaf(b))
        for context, (exp_there, product_there) in zip(contexts, expected):
            with gmpy2.context(gmpy2.get_context(), **context):
                got = hp.exp(hp.leaf(x)).v
                product = hp.matmul(hp.leaf(a), hp.leaf(b)).v
            assert np.array_equal(got, exp_there)
            assert [v.precision for v in product.ravel()] == [
                v.precision for v in product_there.ravel()
            ]
            assert np.array_equal(product, product_there)
        with gmpy2.context(gmpy2.get_context(), emax=1000, emin=-1000):
            assert np.isinf(hp.exp(hp.leaf(big)).f).all()  # beyond this range, not exp(700)
        with gmpy2.context(gmpy2.get_context(), trap_overflow=True, emax=1000, emin=-1000):
            with pytest.raises(gmpy2.OverflowResultError):
                hp.exp(hp.leaf(big))


def test_sigmoid_is_remembered_like_any_named_function(evaluated):
    floats = np.random.default_rng(7).normal(size=(9, 9))
    with hp.working_precision(), hp.results_remembered():
        first, again = hp.sigmoid(hp.leaf(floats)).v, hp.sigmoid(hp.leaf(floats)).v
    assert len(evaluated) == 1 and np.array_equal(first, again)


def test_converted_floats_are_the_callers_own():
    floats = np.random.default_rng(5).normal(size=(9, 9))
    floats[0, 0] = -0.0
    with hp.working_precision():
        alone = hp.leaf(floats).v
        with hp.results_remembered():
            first = hp.leaf(floats)
            first.v[1, 1] = hp.tracked._ZERO
            again = hp.leaf(floats.copy())
            assert np.array_equal(again.v, alone) and again.v is not first.v
            assert all(isinstance(v, hp.tracked.gmpy2.mpfr) for v in again.v.ravel())
            assert np.array_equal(hp.leaf(floats + 1).v, (floats + 1).astype(object))


PORT = """
import torch

PARAMS = {{"W1": {W1}, "b1": {b1}, "w": {w}}}


def loss(params, X, y, xp):
    h = xp.tanh(X @ params["W1"] + params["b1"])
    r = h @ params["w"] - y
    return xp.mean(r * r) / 2


def loss_torch(params, X, y):
    h = torch.tanh(X @ params["W1"] + params["b1"])
    r = h @ params["w"] - y
    return torch.mean(r * r) / 2
"""


def test_a_port_is_judged_the_same_with_its_results_remembered(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    source = PORT.format(
        W1=rng.normal(size=(3, 6)).round(3).tolist(),
        b1=rng.normal(size=6).round(3).tolist(),
        w=rng.normal(size=6).round(3).tolist(),
    )
    path = tmp_path / "port.py"
    path.write_text(textwrap.dedent(source))
    data = (rng.normal(size=(12, 3)), rng.normal(size=12))

    def run():
        report = gradcmp.compare(data, loss=str(path), backends="torch-grad", dtypes="float64")
        ref = report.reference
        arrays = [
            ref.by_dtype["float64"].arrays,
            ref.sides["loss_torch"].by_dtype["float64"].arrays,
        ]
        return report, [(a.names, a.hi, a.lo, a.lo2, a.coefficient) for a in arrays]

    remembered, with_memory = run()
    monkeypatch.setattr(hp, "results_remembered", contextlib.nullcontext)
    alone, without = run()
    assert remembered.verdict == alone.verdict == "agree"
    assert remembered.port.verdict == alone.port.verdict == "same"
    for ours, theirs in zip(with_memory, without):
        assert ours[0] == theirs[0]
        for a, b in zip(ours[1:], theirs[1:]):
            np.testing.assert_array_equal(a, b)
    assert memory._Remembered.depth == 0 and memory._Remembered.entries == {}


def test_output_limbs_taken_from_equal_values_are_those_worked_out():
    """OutputArrays take the float64 limbs of equal values from the arrays made before them;
    they are the same as worked out afresh, for every kind of value."""
    import gmpy2

    from gradcmp.reference import values

    with hp.working_precision(ieee=True):
        third = hp.divide(hp.leaf(np.ones(3)), hp.leaf(np.full(3, 3.0))).v
        odd = [third[0], gmpy2.mpfr("nan"), gmpy2.mpfr("inf"), gmpy2.mpfr(0), -gmpy2.mpfr(0)]
        odd += [gmpy2.mpfr(2) ** -1070, gmpy2.mpfr(2) ** 700, third[1] * 3, third[2]]
        first = np.array(odd, dtype=object)
        second = first.copy()
        second[0] = third[0] * (1 + gmpy2.mpfr(2) ** -120)  # differs beyond float64
        second[3] = -gmpy2.mpfr(0)  # -0 after +0
        second[4] = gmpy2.mpfr(0)
    n = len(first)
    names = [f"w[{i}]" for i in range(n)]

    def made(objects):
        return values.OutputArrays(names, objects, np.ones(n), np.ones(n), np.zeros(n))

    keep = made(first)  # noqa: F841 (kept alive: the arrays the next take limbs from)
    reused = made(second)
    values._last_arrays = None
    fresh = made(second)
    for field in ("hi", "lo", "lo2", "plain"):
        a, b = getattr(reused, field), getattr(fresh, field)
        assert np.array_equal(a, b, equal_nan=field != "plain"), field
        if field == "hi":
            assert np.array_equal(np.signbit(a), np.signbit(b))
