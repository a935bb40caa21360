"""The model zoo: every model × every backend × float32/float64 agrees with the reference on
random data, and each model's gradient equals an implementation we did not write."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.cli import cli
from gradcmp.judging.agreement import AGREE
from gradcmp.models import MODELS


def data_for(model: str, rng: np.random.Generator, n: int = 24, d: int = 3):
    X = rng.normal(size=(n, d))
    if model == "logistic":
        return X, (rng.random(n) < 0.5).astype(float)
    if model == "softmax":
        return X, rng.integers(0, 3, n).astype(float)
    return X, X @ rng.normal(size=d) + 0.1 * rng.normal(size=n)


def params_for(model: str, rng: np.random.Generator, d: int = 3):
    # Away from zero, so that no term vanishes (mlp's come seeded).
    return {
        "linear": {"theta0": 0.3, "theta1": rng.normal(size=d)},
        "logistic": {"b": 0.2, "w": rng.normal(size=d)},
        "softmax": {"W": rng.normal(size=(d, 3)), "b": rng.normal(size=3)},
        "mlp": None,
    }[model]


@pytest.mark.parametrize("model", list(MODELS))
def test_every_backend_agrees_on_random_data(model):
    rng = np.random.default_rng(sum(map(ord, model)))
    report = gradcmp.compare(
        data_for(model, rng), model=model, params=params_for(model, rng), backends="all"
    )
    ran = [r for r in report.results if r.status == "ok"]
    skipped = {(r.backend, r.dtype) for r in report.results if r.status == "skipped"}
    # finite-diff and complex-step compute in float64 only; complex-step needs an analytic loss
    expected = {("finite-diff", "float32"), ("complex-step", "float32")}
    if model in ("logistic", "softmax"):  # logaddexp and max are not analytic
        expected.add(("complex-step", "float64"))
    assert skipped == expected, [r.note for r in report.results]
    assert not [r for r in report.results if r.status == "failed"]
    assert {r.verdict for r in ran} == {AGREE}, [r.why for r in ran]


def test_logistic_gradient_equals_torchs_bce_with_logits():
    # torch.nn.functional.binary_cross_entropy_with_logits: PyTorch's own implementation of
    # the same loss (we did not write it), differentiated by autograd in float64.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    X, y = data_for("logistic", rng, n=50)
    w, b = rng.normal(size=3), 0.4
    report = gradcmp.compare(
        (X, y), model="logistic", params={"w": w, "b": b}, backends=["native"], dtypes="float64"
    )
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        bt + torch.from_numpy(X) @ wt, torch.from_numpy(y)
    )
    loss.backward()
    exact = report.reference.by_dtype["float64"]
    theirs = {
        "loss": loss.item(),
        "b": bt.grad.item(),
        **{f"w[{j}]": g for j, g in enumerate(wt.grad.tolist())},
    }
    for name, value in theirs.items():
        # within float64 rounding: the same τ that judges every backend
        tau = exact.bound(name, gradcmp.dtypes.FLOAT64, len(y))
        assert abs(value - exact.outputs()[name]) <= tau, name


def test_softmax_gradient_equals_torchs_cross_entropy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    X, y = data_for("softmax", rng, n=40)
    W, b = rng.normal(size=(3, 3)), rng.normal(size=3)
    report = gradcmp.compare(
        (X, y), model="softmax", params={"W": W, "b": b}, backends=["native"], dtypes="float64"
    )
    Wt, bt = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(
        torch.from_numpy(X) @ Wt + bt, torch.from_numpy(y).long()
    )
    loss.backward()
    exact = report.reference.by_dtype["float64"]
    theirs = {
        "loss": loss.item(),
        **{f"W[{i},{k}]": Wt.grad[i, k].item() for i in range(3) for k in range(3)},
        **{f"b[{k}]": bt.grad[k].item() for k in range(3)},
    }
    for name, value in theirs.items():
        assert abs(value - exact.outputs()[name]) <= exact.bound(name, gradcmp.dtypes.FLOAT64, 40)


def test_mlp_options_and_seeded_weights():
    first = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        model="mlp",
        hidden=(4, 3),
        seed=5,
        backends=["native"],
        dtypes="float64",
    )
    again = gradcmp.compare(
        gradcmp.loading.data.bundled_path(),
        model="mlp",
        hidden=(4, 3),
        seed=5,
        backends=["native"],
        dtypes="float64",
    )
    assert list(first.problem.params.values) == ["W1", "b1", "W2", "b2", "w_out", "b_out"]
    assert first.problem.params.values["W2"].shape == (4, 3)
    assert first.results[0].grads == again.results[0].grads  # seeded: reproducible
    result = CliRunner().invoke(cli, ["run", "--model", "mlp", "--hidden", "1,2,3"])
    assert result.exit_code == 2 and "one or two hidden layers" in result.stderr


@pytest.mark.parametrize(
    ("model", "y", "fragment"),
    [
        ("logistic", "2", "logistic needs targets in [0, 1]"),
        ("softmax", "1.5", "softmax needs integer class labels"),
        ("softmax", "0", "at least two classes"),
    ],
)
def test_targets_a_model_cannot_take(tmp_path, model, y, fragment):
    path = tmp_path / "d.csv"
    path.write_text(f"x,y\n1,0\n2,{y}\n")
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "--model", model])
    assert result.exit_code == 2
    assert fragment in result.stderr


def test_many_parameters_are_summarised_per_tensor():
    # Softmax on the seed's labels 13 … 30 has 31 classes: 62 gradient elements.
    result = CliRunner().invoke(
        cli,
        ["run", "--model", "softmax", "-b", "native", "--dtype", "float64", "--format", "plain"],
    )
    assert result.exit_code == 0
    assert "W [1, 31]" in result.output and "worst of 31: " in result.output
    full = json.loads(
        CliRunner()
        .invoke(cli, ["run", "--model", "softmax", "-b", "native", "--format", "json"])
        .output
    )
    assert len(full["results"][0]["grads"]) == 62
    summary = json.loads(
        CliRunner()
        .invoke(
            cli,
            [
                "run",
                "--model",
                "softmax",
                "-b",
                "native",
                "--format",
                "json",
                "--json-detail",
                "summary",
            ],
        )
        .output
    )
    assert summary["detail"] == "summary"
    assert set(summary["results"][0]["errors"]) == {"loss", "W", "b"}
    assert summary["results"][0]["grads"]["W"]["elements"] == 31


def test_models_command_lists_the_zoo():
    output = CliRunner().invoke(cli, ["models"]).output
    for name in ("linear", "logistic", "softmax", "mlp"):
        assert name in output
    assert "z[y]" in output  # rich markup must not eat the formula


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_logistic_far_from_the_boundary_agrees(tmp_path):
    data = write(tmp_path, "neg1.csv", "x,y\n-3,0\n")
    report = gradcmp.compare(
        data,
        model="logistic",
        params={"w": [5.0]},
        backends=["native", "numpy", "torch-grad", "jax-grad"],
        dtypes="float64",
    )
    assert {r.verdict for r in report.results} == {"agree"}, [r.why for r in report.results]
