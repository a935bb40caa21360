"""numpy, finite-diff, complex-step, and the jit-versus-eager note."""

from __future__ import annotations

from pathlib import Path

import pytest

import gradcmp
from gradcmp.judging.agreement import AGREE

EXAMPLE = Path(__file__).parents[1] / "examples" / "port_linear.py"


def test_numpy_finite_diff_and_complex_step_agree_on_the_seed():
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        backends=["numpy", "finite-diff", "complex-step"],
        dtypes="float64",
    )
    by_backend = {r.backend: r for r in report.results}
    assert {r.verdict for r in report.results} == {AGREE}
    assert by_backend["finite-diff"].note.startswith("finite-difference error estimate up to")
    # complex step has no cancellation: within a few ulps of the exact gradient
    assert max(e.ulp for e in by_backend["complex-step"].errors.values()) <= 4


def test_finite_diff_catches_a_wrong_gradient_too(buggy_model):
    # finite differences of the buggy loss (missing ½) are twice the true gradient
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        model=buggy_model,
        backends=["finite-diff"],
        dtypes="float64",
    )
    (result,) = report.results
    assert result.verdict == "disagree"


def test_complex_step_skips_a_loss_that_is_not_complex_safe(tmp_path):
    path = tmp_path / "absloss.py"
    path.write_text(
        "PARAMS = {'w': 0.5}\n"
        "def loss(params, X, y, xp):\n"
        "    return xp.mean(xp.abs(params['w'] * X[:, 0] - y))\n"
    )
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(), loss=path, backends=["complex-step"], dtypes="float64"
    )
    (result,) = report.results
    assert result.status == "skipped" and "not complex-safe" in result.note


def test_jit_versus_eager_difference_is_a_note():
    pytest.importorskip("jax")
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        loss=EXAMPLE,
        backends=["jax-grad", "jax-jit"],
        dtypes="float64",
    )
    jit = next(r for r in report.results if r.backend == "jax-jit")
    assert jit.verdict == AGREE
    assert "differs from eager jax-grad" in jit.note and "theta0 (1 ulp)" in jit.note
    assert jit.compile_seconds is not None and jit.compile_seconds > 0


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_complex_step_skips_a_partly_unsafe_loss(tmp_path):
    path = write(
        tmp_path,
        "l1.py",
        (
            "PARAMS = {'theta0': 0.5, 'theta1': -0.25}\n"
            "def loss(params, X, y, xp):\n"
            "    r = params['theta0'] + params['theta1'] * X[:, 0] - y\n"
            "    penalty = xp.abs(params['theta0']) + xp.abs(params['theta1'])\n"
            "    return xp.mean(r * r) / 2 + 0.1 * penalty\n"
        ),
    )
    report = gradcmp.compare(
        gradcmp.loading.data.bundled_path(), loss=path, backends=["complex-step"], dtypes="float64"
    )
    (r,) = report.results
    assert r.status == "skipped" and r.note == "the loss is not complex-safe (it uses absolute)"
