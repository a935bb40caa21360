"""The port verdict (reference.port): same, different, convention, within an accepted
difference; the JSON contract and the note people read."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest
from test_divergence_location import (
    FILE,
    GELU_PARAMS,
    JAX_KINK,
    TORCH_KINK,
    gelu_program,
    reference,
    relu_program,
    shadow,
    variance_program,
)

from gradcmp.reference.port import CONSTANTS_HINT, PortVerdict, port_verdict, unknown
from gradcmp.reference.shadow import BACKWARD, FORWARD

KEYS = {"verdict", "sides", "differences", "divergence", "kinks", "note", "accepted"}


def verdict_of(torch, jax, **kwargs) -> PortVerdict:
    graphs = {"loss_torch": torch, "loss_jax": jax}
    return port_verdict({k: reference(g) for k, g in graphs.items()}, graphs, **kwargs)


def test_identical_programs_are_the_same():
    v = verdict_of(
        shadow("loss_torch", variance_program(1e-5)), shadow("loss_jax", variance_program(1e-5))
    )
    assert v.verdict == "same" and not v.fails
    assert v.differences == () and v.divergence == () and v.kinks == ()
    assert "compute the same function" in v.note
    document = v.to_dict()
    assert set(document) == KEYS
    assert document["divergence"] == [] and document["sides"] == ["loss_torch", "loss_jax"]
    json.dumps(document, allow_nan=False)


def test_mean_against_sum_then_divide_is_the_same():
    torch = shadow("loss_torch", variance_program(1e-5))
    jax = shadow("loss_jax", variance_program(1e-5, jax_style=True, eps_step=True))
    v = verdict_of(torch, jax)
    assert v.verdict == "same", v.note
    assert v.differences == ()


def test_a_different_eps_is_a_different_function_located_at_the_add():
    v = verdict_of(
        shadow("loss_torch", variance_program(1e-5)),
        shadow("loss_jax", variance_program(1e-6, jax_style=True)),
    )
    assert v.verdict == "different" and v.fails
    (d,) = v.differences
    assert d.sides == ("loss_torch", "loss_jax")
    assert 1e-8 < d.loss_rel < 1e-3 and d.worst.startswith("w[") and d.worst_rel > 0
    assert [(x.side, x.op, x.line, x.phase) for x in v.divergence] == [
        ("loss_torch", "add", 6, FORWARD),
        ("loss_jax", "add", 6, FORWARD),
    ]
    assert v.note.startswith("loss_jax computes a different function: loss rel ")
    assert f"worst gradient {d.worst} rel " in v.note
    assert "first parts at port.py:6 (add)" in v.note
    document = v.to_dict()
    assert set(document) == KEYS
    (entry,) = document["differences"]
    assert set(entry) == {"sides", "loss_rel", "worst", "hint"}
    assert entry["worst"] == {"name": d.worst, "rel": d.worst_rel}
    assert [set(x) for x in document["divergence"]] == [
        {"side", "file", "line", "op", "code", "rel", "phase"}
    ] * 2
    assert document["divergence"][0]["file"] == FILE
    assert document["divergence"][0]["code"] == "s = sqrt(var + 1e-05)"


def test_a_gelu_port_parts_at_the_activation():
    v = verdict_of(
        shadow("loss_torch", gelu_program(False), GELU_PARAMS),
        shadow("loss_jax", gelu_program(True), GELU_PARAMS),
    )
    assert v.verdict == "different"
    assert {x.line for x in v.divergence} == {4}
    assert "port.py:4 (aten.gelu.default) in loss_torch" in v.note


def test_equal_losses_and_a_gradient_split_at_a_relu_kink_is_a_convention():
    torch, jax = relu_program("loss_torch"), relu_program("loss_jax")
    v = verdict_of(torch, jax)
    assert v.verdict == "convention" and v.fails
    (d,) = v.differences
    assert d.loss_rel == 0.0 and d.worst.startswith("w[") and d.worst_rel > 0.1
    # the note names the op, the point and each side's convention
    assert TORCH_KINK in v.note and JAX_KINK in v.note
    assert "aten.relu.default at port.py:3" in v.note and "max at port.py:3" in v.note
    assert [(k.side, k.op, k.line, k.note) for k in v.kinks] == [
        ("loss_torch", "aten.relu.default", 3, TORCH_KINK),
        ("loss_jax", "max", 3, JAX_KINK),
    ]
    assert [(x.op, x.phase) for x in v.divergence] == [
        ("aten.threshold_backward.default", BACKWARD),
        ("select_n", BACKWARD),
    ]
    assert v.to_dict()["kinks"][0] == {
        "side": "loss_torch",
        "file": FILE,
        "line": 3,
        "op": "aten.relu.default",
        "note": TORCH_KINK,
    }


def test_a_gradient_difference_without_a_kink_is_different():
    torch, jax = relu_program("loss_torch"), relu_program("loss_jax")
    for graph in (torch, jax):
        for step in graph.steps:
            step.kink = ""
    v = verdict_of(torch, jax)
    assert v.verdict == "different" and v.fails
    assert "the losses agree" in v.note


def test_a_difference_within_accept_passes_but_is_listed():
    torch = shadow("loss_torch", variance_program(1e-5))
    jax = shadow("loss_jax", variance_program(1.0001e-5))
    v = verdict_of(torch, jax, accept=1e-5)
    assert v.verdict == "same" and not v.fails
    (d,) = v.differences
    assert 0 < d.loss_rel < 1e-5
    assert "within the accepted 1e-5" in v.note
    assert v.divergence == () and v.accepted == 1e-5
    assert v.to_dict()["accepted"] == 1e-5
    stricter = verdict_of(torch, jax, accept=1e-12)
    assert stricter.verdict == "different" and stricter.fails


def test_the_generic_loss_is_compared_too_and_the_odd_side_named():
    torch = shadow("loss_torch", variance_program(1e-5))
    jax = shadow("loss_jax", variance_program(1e-5, jax_style=True))
    exact = reference(torch)
    doubled = dataclasses.replace(
        exact, loss=2 * exact.loss, grads={k: 2 * g for k, g in exact.grads.items()}
    )
    references = {"loss_torch": exact, "loss_jax": reference(jax), "loss": doubled}
    v = port_verdict(references, {"loss_torch": torch, "loss_jax": jax}, rows=12)
    assert v.verdict == "different" and v.sides == ("loss_torch", "loss_jax", "loss")
    assert [d.sides for d in v.differences] == [("loss_torch", "loss"), ("loss_jax", "loss")]
    assert all(d.hint == "×2: a missing ½ / a doubled term" for d in v.differences)
    assert v.note.startswith("loss computes a different function from loss_torch and loss_jax")
    assert "a missing ½" in v.note
    assert v.divergence == ()  # the generic side has no graph: nothing to walk


def test_unknown_carries_its_reason():
    v = unknown(["loss_torch", "loss_jax"], "loss_jax: no shadow evaluation: xp.erf")
    assert v.verdict == "unknown" and not v.fails
    assert v.to_dict() == {
        "verdict": "unknown",
        "sides": ["loss_torch", "loss_jax"],
        "differences": [],
        "divergence": [],
        "kinks": [],
        "note": "loss_jax: no shadow evaluation: xp.erf",
        "accepted": 0.0,
    }


@pytest.mark.parametrize("rel", [float("inf"), float("nan")])
def test_non_finite_numbers_are_json_strings(rel):
    from gradcmp.reference.port import Difference

    v = PortVerdict(
        "different", ("a", "b"), (Difference(("a", "b"), rel, "loss", rel),), (), (), ""
    )
    document = v.to_dict()
    json.dumps(document, allow_nan=False)
    assert document["differences"][0]["loss_rel"] in ("inf", "nan")


@pytest.mark.parametrize("shift, verdict", [(2.0**-50, "same"), (2.0**-30, "different")])
def test_float64_constants_rounded_differently_are_the_same_function(shift, verdict):
    """A correct GELU port parts from its twin by ~1e-15 in the gradient: each framework's
    backward rule holds its own float64 rounding of 2/√π or 1/√2. Beyond 2**-40 of the
    magnitude it is a different function."""
    torch = shadow("loss_torch", variance_program(1e-5))
    exact = reference(torch)
    name = "w[1]"
    moved = dataclasses.replace(
        exact, grads=dict(exact.grads, **{name: exact.grads[name] * (1 + Fraction(shift))})
    )
    v = port_verdict({"loss_torch": exact, "loss_jax": moved}, {"loss_torch": torch})
    assert v.verdict == verdict and v.fails == (verdict == "different")
    (d,) = v.differences
    # rel is measured against the larger of the values and the tensor's largest value
    largest = max(abs(v) for k, v in exact.grads.items() if k.startswith("w["))
    expected = shift * float(abs(exact.grads[name]) / largest)
    assert d.worst == name and d.worst_rel == pytest.approx(expected, rel=1e-3)
    if verdict == "same":
        assert d.hint == CONSTANTS_HINT
        assert "same function to float64 resolution" in v.note and name in v.note


def test_output_arrays_know_where_each_tensor_begins():
    """The port verdict's per-tensor scales read the runs of outputs: given by the reference
    (from its tensors' sizes) or read from the names, they are the same."""
    import numpy as np

    from gradcmp.reference import values

    names = ["loss", "b", "w[0]", "w[1]", "W[0,0]", "W[0,1]", "W[1,0]", "W[1,1]", "c"]
    n = len(names)
    given = values._starts([1, 1, 2, 0, 4, 1])  # an empty tensor has no run
    objects = np.array([0.0] * n, dtype=object)
    read = values.OutputArrays(names, objects, np.ones(n), np.ones(n), np.zeros(n))
    assert given == read.tensor_starts == [0, 1, 2, 4, 8]
