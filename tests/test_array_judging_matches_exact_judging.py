"""Judging at array speed gives the exact rule's verdicts (issue 13, item 1).

The float64 pre-check (agreement.measure_arrays, from a reference's limbs) decides only the
outputs it can decide rigorously; for those, the verdict is the exact ``measure``'s and every
number is within 2**-49 of it (bound and magnitude identical). Random references, values and
bounds, near the bound on purpose, with exact zeros, non-finite, huge and tiny numbers, in
every dtype. And end to end: a model above the threshold judged both ways gives the same
verdict per output, and the same port verdict.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcmp.dtypes import DTYPES
from gradcmp.judging import agreement
from gradcmp.judging import judge as judging
from gradcmp.judging.agreement import (
    VERDICT_CODES,
    measure,
    measure_arrays,
    running_bound,
    running_bounds,
)
from gradcmp.reference import port
from gradcmp.reference.highprec import PRECISION_BITS, working_precision
from gradcmp.reference.values import OutputArrays

ACCURACY = 2.0**-49  # the numbers of a pre-checked output, relative to the exact ones


def _mpfr(x: Fraction):
    with working_precision():
        return gmpy2.mpfr(x.numerator) / x.denominator


def _special(draw, pool):
    return draw(st.sampled_from(pool))


@st.composite
def cases(draw):
    """One output: (value, exact reference as a 200-bit number, M, e, f)."""
    exponent = draw(st.integers(-1100, 1100) | st.sampled_from([0, 1, -1, -600, 600, -1022]))
    significand = draw(st.fractions(min_value=-2, max_value=2, max_denominator=2**70))
    kind = draw(st.sampled_from(["zero", "float", "near", "general", "general"]))
    if kind == "zero":
        r = Fraction(0)
    elif kind == "float":
        r = Fraction(draw(st.floats(allow_nan=False, allow_infinity=False)))
    else:
        r = significand * Fraction(2) ** exponent
    r = Fraction(*_mpfr(r).as_integer_ratio()) if r else r  # what a 200-bit value holds
    e = draw(
        st.sampled_from([0.0, 1.0, 3.5, 1e6, 1e-300, 5e-324, math.inf, math.nan])
        | st.floats(0, 1e30)
    )
    f = draw(st.sampled_from([0.0, 1.0, 0.5, 1e-30, math.inf]) | st.floats(0, 1e6))
    magnitude = draw(
        st.sampled_from([0.0, abs(agreement.to_float(r))])
        | st.floats(0, 1e300)
        | st.just(abs(agreement.to_float(r)) * 100)
    )
    if not math.isfinite(magnitude):
        magnitude = 0.0
    dtype = DTYPES[draw(st.sampled_from(list(DTYPES)))]
    tau = running_bound(dtype, e, f)
    how = draw(st.sampled_from(["at", "ulps", "tau", "tau", "special"]))
    rf = agreement.to_float(r)
    if how == "at" or not math.isfinite(rf):
        value = rf
    elif how == "ulps":
        value = rf
        for _ in range(draw(st.integers(-3, 3)) % 7):
            value = math.nextafter(value, draw(st.sampled_from([math.inf, -math.inf])))
    elif how == "tau" and tau is not None:
        # |v − r| within a few float64 ulps of τ, or 2**-50 of it: the pre-check's edge.
        factor = 1 + draw(st.sampled_from([-1, 1])) * draw(
            st.sampled_from([0.0, 2.0**-52, 2.0**-50, 2.0**-48, 2.0**-40, 1e-3])
        )
        value = agreement.to_float(r + draw(st.sampled_from([-1, 1])) * tau * Fraction(factor))
    else:
        value = draw(st.sampled_from([math.inf, -math.inf, math.nan, 0.0, 1e308, 5e-324]))
    return value, r, magnitude, e, f, dtype


def _check(batch):
    dtype = batch[0][5]
    batch = [c for c in batch if c[5] == dtype]
    values = np.array([c[0] for c in batch])
    objects = np.array([_mpfr(c[1]) for c in batch], dtype=object)
    magnitude = np.array([c[2] for c in batch])
    e = np.array([c[3] for c in batch])
    f = np.array([c[4] for c in batch])
    arrays = OutputArrays([f"w[{i}]" for i in range(len(batch))], objects, magnitude, e, f)
    tau, tau_ok = running_bounds(dtype, e, f)
    clear, code, numbers = measure_arrays(
        values, arrays.hi, arrays.lo, arrays.plain, magnitude, tau, tau_ok, dtype
    )
    for i, (v, r, m, ei, fi, _) in enumerate(batch):
        exact_tau = running_bound(dtype, ei, fi)
        if tau_ok[i]:
            assert tau[i] == agreement.to_float(exact_tau)
        if not clear[i]:
            continue
        exact = measure(v, r, dtype, Fraction(m), exact_tau)
        assert VERDICT_CODES[code[i]] == exact.verdict, (v, r, m, ei, fi, dtype)
        abs_, rel, ulp, ratio, resolution = (x[i] for x in numbers)
        fast = agreement.Error(abs_, rel, ulp, tau[i], ratio, m, resolution)
        assert fast.verdict == exact.verdict
        assert fast.bound == exact.bound and fast.magnitude == exact.magnitude
        for name in ("abs", "rel", "ulp", "ratio", "resolution"):
            a, b = getattr(fast, name), getattr(exact, name)
            assert a == b or abs(a - b) <= ACCURACY * max(abs(a), abs(b)), (name, a, b)


@settings(max_examples=300, deadline=None)
@given(st.lists(cases(), min_size=1, max_size=12))
def test_the_float_pre_check_decides_only_what_the_exact_rule_decides_alike(batch):
    _check(batch)


def test_clear_cases_are_most_cases_and_edges_go_to_the_exact_rule():
    dtype = DTYPES["float64"]
    rng = np.random.default_rng(1)
    r = [Fraction(x) / 3 for x in rng.normal(size=200).tolist()]
    objects = np.array([_mpfr(x) for x in r], dtype=object)
    e = np.full(len(r), 10.0)
    arrays = OutputArrays([f"w[{i}]" for i in range(len(r))], objects, np.ones(len(r)), e, 0 * e)
    tau, ok = running_bounds(dtype, e, 0 * e)
    exact_tau = running_bound(dtype, 10.0, 0.0)
    at_tau = [agreement.to_float(x + exact_tau) for x in r]  # |v − r| ≈ τ: undecidable in float
    clear, _, _ = measure_arrays(
        np.array(at_tau), arrays.hi, arrays.lo, arrays.plain, 1.0, tau, ok, dtype
    )
    assert not clear.all()
    near = [agreement.to_float(x) for x in r]
    clear, code, _ = measure_arrays(
        np.array(near), arrays.hi, arrays.lo, arrays.plain, 1.0, tau, ok, dtype
    )
    assert clear.all() and (code == 0).all()
    # A NaN, an inf, an exact 0 reference with a value 0
    values = np.array([math.nan, math.inf, *near[2:]])
    clear, _, _ = measure_arrays(values, arrays.hi, arrays.lo, arrays.plain, 1.0, tau, ok, dtype)
    assert not clear[:2].any() and clear[2:].all()


def test_limbs_are_the_value_to_the_last_bits():
    with working_precision():
        x = gmpy2.mpfr(1) / 3
        objects = np.array(
            [x, gmpy2.mpfr(0), gmpy2.mpfr(2) ** -1060, gmpy2.mpfr(2) ** 2000], dtype=object
        )
    arrays = OutputArrays(["a", "b", "c", "d"], objects, np.zeros(4), np.zeros(4), np.zeros(4))
    exact = Fraction(*x.as_integer_ratio())
    rest = exact - Fraction(arrays.hi[0]) - Fraction(arrays.lo[0]) - Fraction(arrays.lo2[0])
    assert abs(rest) <= abs(exact) * Fraction(2) ** -155
    assert arrays.plain.tolist() == [True, True, False, False]
    assert arrays.exact(0) == exact


# --- End to end: a model above the threshold, judged both ways ------------------------------


@pytest.fixture
def mlp_file(tmp_path):
    pytest.importorskip("torch")
    sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))
    try:
        import gradcheck_mlp
    finally:
        sys.path.pop(0)
    return gradcheck_mlp


@pytest.mark.parametrize("bug", ["clean", "scale:1e-6"])
def test_a_model_above_the_threshold_gets_the_same_verdicts_both_ways(
    mlp_file, tmp_path, bug, monkeypatch
):
    import gradcmp

    loss = mlp_file.LossFile(tmp_path, (16, 16), bug)  # 481 parameters
    data = mlp_file.data(12)

    def run():
        return gradcmp.compare(
            data, loss=loss.path, backends="torch-grad", dtypes="float32,float64"
        )

    fast = run()
    monkeypatch.setattr(judging, "ARRAY_THRESHOLD", None)
    monkeypatch.setattr(port, "ARRAY_THRESHOLD", 10**9)
    exact = run()
    assert len(fast.results[0].errors) > 256
    for a, b in zip(fast.results, exact.results):
        assert (a.verdict, a.why) == (b.verdict, b.why)
        assert a.errors.keys() == b.errors.keys()
        for k, ea in a.errors.items():
            eb = b.errors[k]
            assert ea.verdict == eb.verdict
            assert ea.bound == eb.bound and ea.magnitude == eb.magnitude
            for x, y in zip(ea, eb):
                assert x == y or abs(x - y) <= ACCURACY * max(abs(x), abs(y))
    assert (fast.port and fast.port.verdict) == (exact.port and exact.port.verdict)
    assert (fast.port and fast.port.note) == (exact.port and exact.port.note)


PORT_FILE = """
import torch
from gradcmp.models import mlp
from gradcmp.models.base import DataShape

HIDDEN = (16, 16)
PARAMS = {{k: v.tolist() for k, v in mlp.initial_for(HIDDEN, 0)(DataShape(10)).items()}}
loss = mlp.loss_for(2)


def loss_torch(params, X, y):
    h = X
    for layer in (1, 2):
        h = torch.tanh(h @ params[f"W{{layer}}"] + params[f"b{{layer}}"])
    r = h @ params["w_out"] + params["b_out"] - y
    return torch.mean(r * r) / 2 * {factor}
"""


@pytest.mark.parametrize("factor", ["1", "(1 + 1e-12)", "(1 + 2**-45)", "1.5"])
def test_the_port_verdict_is_the_same_both_ways(mlp_file, tmp_path, factor, monkeypatch):
    import gradcmp

    path = tmp_path / "port.py"
    path.write_text(PORT_FILE.format(factor=factor))
    data = mlp_file.data(12)

    def run():
        return gradcmp.compare(data, loss=path, backends="torch-grad", dtypes="float64")

    fast = run()
    monkeypatch.setattr(judging, "ARRAY_THRESHOLD", None)
    monkeypatch.setattr(port, "ARRAY_THRESHOLD", 10**9)
    exact = run()
    assert fast.port.verdict == exact.port.verdict
    assert fast.port.to_dict() == exact.port.to_dict() or _close_port(fast.port, exact.port)
    assert [r.verdict for r in fast.results] == [r.verdict for r in exact.results]


def _close_port(a, b) -> bool:
    """The same differences, their rel within 2**-49 (rounded in float64 on the array path);
    the worst element may be another one whose rel ties with it to 2**-49 (a loss scaled by
    1 + 1e-12 moves every output by the same rel)."""
    assert a.verdict == b.verdict and len(a.differences) == len(b.differences)
    for x, y in zip(a.differences, b.differences):
        assert (x.sides, x.hint) == (y.sides, y.hint)
        for p, q in ((x.loss_rel, y.loss_rel), (x.worst_rel, y.worst_rel)):
            assert p == q or abs(p - q) <= ACCURACY * max(abs(p), abs(q))
    return True


def test_precision_is_what_the_limbs_assume():
    assert PRECISION_BITS <= 400  # values.OutputArrays: limbs are exact up to 400-bit values
