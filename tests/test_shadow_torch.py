"""The torch shadow: torch's own forward and backward graph, evaluated exactly (trace_torch)."""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from gradcmp.reference import highprec as hp  # noqa: E402
from gradcmp.reference.shadow import BACKWARD, FORWARD  # noqa: E402
from gradcmp.reference.torch_rules import BCE_EPSILON  # noqa: E402
from gradcmp.reference.trace_torch import shadow_torch  # noqa: E402

U, ETA = 2.0**-53, 2.0**-1022  # float64's unit roundoff and smallest normal
M_SQRT1_2 = 0.70710678118654752440  # the float64 1/√2 of torch's gelu kernel
rng = np.random.default_rng(7)


def torch_value_and_grad(loss, params, X, y):
    """torch's own float64 result (eager autograd)."""
    leaves = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    out = loss(leaves, torch.tensor(X), torch.tensor(y))
    out.backward()
    grads = {k: np.zeros(t.shape) if t.grad is None else t.grad.numpy() for k, t in leaves.items()}
    return out.detach().numpy(), grads


def assert_close(a: hp.Tracked, b, rel=1e-50):
    """|a − b| ≤ rel·max|b| elementwise, in MPFR (b: a Tracked or an array of mpfr)."""
    b = b.v if isinstance(b, hp.Tracked) else b
    with hp.working_precision():
        scale = max(abs(t) for t in np.ravel(b))
        gaps = [abs(s - t) for s, t in zip(np.ravel(a.v), np.ravel(b))]
        assert max(gaps) <= rel * scale, f"{float(max(gaps) / scale):.3g} relative"


def assert_within_bound(shadow: hp.Tracked, value):
    """torch's float64 value lies within the shadow's running error bound of the exact one."""
    bound = shadow.e.real * U + shadow.e.imag * ETA
    gap = np.abs(shadow.f - value)
    assert (gap <= bound).all(), f"gap/bound {np.max(gap / np.maximum(bound, 1e-300)):.3g}"


# --- The same losses for torch and for xp --------------------------------------------------------


def mse_torch(p, X, y):
    return torch.mean((X @ p["w"] + p["b"] - y) ** 2)


def mse_xp(p, X, y, xp):
    return xp.mean((X @ p["w"] + p["b"] - y) ** 2)


def bce_logits_torch(p, X, y):
    return F.binary_cross_entropy_with_logits(X @ p["w"] + p["b"], y)


def bce_logits_xp(p, X, y, xp):
    z = X @ p["w"] + p["b"]
    return xp.mean(xp.logaddexp(0.0, z) - y * z)


def mlp_torch(p, X, y):
    h = torch.tanh(X @ p["W1"] + p["b1"])
    return F.cross_entropy(h @ p["W2"] + p["b2"], y.long())


def mlp_xp(p, X, y, xp):
    logits = xp.tanh(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    shifted = logits - xp.max(logits, axis=1, keepdims=True)
    log_p = shifted - xp.log(xp.sum(xp.exp(shifted), axis=1, keepdims=True))
    onehot = (y.f[:, None] == np.arange(3)).astype(float)
    return -xp.mean(xp.sum(log_p * onehot, axis=1))


def layer_norm_torch(p, X, y):
    h = F.layer_norm(X, (X.shape[1],), p["g"], p["beta"], eps=1e-5)
    return torch.mean((h @ p["w"] - y) ** 2)


def layer_norm_xp(p, X, y, xp):
    mu = xp.mean(X, axis=1, keepdims=True)
    var = xp.mean((X - mu) ** 2, axis=1, keepdims=True)
    h = (X - mu) / xp.sqrt(var + 1e-5) * p["g"] + p["beta"]
    return xp.mean((h @ p["w"] - y) ** 2)


def gelu_torch(p, X, y):
    return torch.mean(F.gelu(X @ p["w"]))


def gelu_xp(p, X, y, xp):
    u = X @ p["w"]
    return xp.mean(u * 0.5 * (1 + xp.erf(u * M_SQRT1_2)))


def case(name):
    X = rng.normal(size=(12, 4))
    if name == "mlp":
        params = {
            "W1": rng.normal(size=(4, 5)),
            "b1": rng.normal(size=5),
            "W2": rng.normal(size=(5, 3)),
            "b2": rng.normal(size=3),
        }
        return params, X, rng.integers(0, 3, size=12).astype(float)
    if name == "layer_norm":
        params = {
            "g": 1 + rng.normal(size=4) / 4,
            "beta": rng.normal(size=4) / 4,
            "w": rng.normal(size=4),
        }
        return params, X, rng.normal(size=12)
    params = {"w": rng.normal(size=4)} | ({} if name == "gelu" else {"b": np.array(0.25)})
    y = (rng.random(12) < 0.5).astype(float) if name == "bce_logits" else rng.normal(size=12)
    return params, X, y


PAIRS = {
    "mse": (mse_torch, mse_xp),
    "bce_logits": (bce_logits_torch, bce_logits_xp),
    "mlp": (mlp_torch, mlp_xp),
    "layer_norm": (layer_norm_torch, layer_norm_xp),
    "gelu": (gelu_torch, gelu_xp),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_the_shadow_is_the_exact_value_of_the_same_loss(name):
    loss_torch, loss_xp = PAIRS[name]
    params, X, y = case(name)
    graph = shadow_torch(loss_torch, params, X, y, user_file=__file__)
    loss, grads = hp.value_and_grad(loss_xp, params, X, y)
    assert graph.framework == "torch" and graph.side == "loss_torch"
    assert_close(graph.loss, loss)
    value, torch_grads = torch_value_and_grad(loss_torch, params, X, y)
    assert_within_bound(graph.loss, value)
    for k in params:
        assert graph.outputs[k] >= 0 and graph.steps[graph.outputs[k]].phase == BACKWARD
        assert_within_bound(graph.grads[k], torch_grads[k])
        if name != "gelu":
            assert_close(graph.grads[k], grads[k])
    assert [s.name for s in graph.steps if s.op == "input"] == [*params, "X", "y"]


def test_gelu_gradient_is_torchs_formula_not_the_exact_derivative():
    # torch's gelu_backward is cdf + x·pdf with pdf = kβ·exp(−x²/2), kβ = fl(fl(2/√π)·fl(1/√2)·½):
    # float64 constants, so it parts from the exact derivative of its own forward (which has
    # fl(1/√2)² ≠ ½) by about 1e-16. The shadow evaluates the formula torch runs.
    params, X, y = case("gelu")
    graph = shadow_torch(gelu_torch, params, X, y, user_file=__file__)
    with hp.working_precision():
        u = hp.matmul(hp.leaf(X), hp.leaf(params["w"]))
        cdf = hp.multiply(0.5, hp.add(1, hp.erf(hp.multiply(u, M_SQRT1_2))))
        k_beta = 1.12837916709551257390 * M_SQRT1_2 * 0.5
        pdf = hp.multiply(k_beta, hp.exp(hp.multiply(hp.multiply(u, u), -0.5)))
        slope = hp.add(cdf, hp.multiply(u, pdf))
        formula = hp.divide(hp.matmul(hp.leaf(X.T), slope), len(y))
    assert_close(graph.grads["w"], formula)
    _, exact = hp.value_and_grad(gelu_xp, params, X, y)
    assert_close(graph.grads["w"], exact["w"], rel=1e-14)
    with pytest.raises(AssertionError):
        assert_close(graph.grads["w"], exact["w"], rel=1e-30)


# --- torch's conventions ----------------------------------------------------------------------


def relu_loss(p, X, y):
    return torch.sum(torch.relu(X @ p["w"]) * y)


def test_relu_at_zero_has_slope_zero_and_a_kink_step():
    X, y = np.array([[1.0, -1.0], [2.0, 1.0], [0.5, 0.25]]), np.array([1.0, 2.0, 4.0])
    params = {"w": np.array([1.0, 1.0])}  # X @ w = [0, 3, 0.75]: the first row at the kink
    graph = shadow_torch(relu_loss, params, X, y, user_file=__file__)
    # d/dw Σ relu(x·w)·y = Σ_{x·w > 0} y·x: the row at 0 contributes nothing (slope 0)
    np.testing.assert_array_equal(graph.grads["w"].f, 2.0 * X[1] + 4.0 * X[2])
    (kink,) = graph.kinks()
    assert kink.op == "aten.relu.default" and kink.phase == FORWARD
    assert kink.kink == "torch.relu at 0: torch gives slope 0"
    assert kink.file == __file__ and "torch.relu" in kink.code
    np.testing.assert_array_equal(
        torch_value_and_grad(relu_loss, params, X, y)[1]["w"], graph.grads["w"].f
    )


def bce_loss(p, X, y):
    return F.binary_cross_entropy(p["p"], y)


def test_saturated_binary_cross_entropy_is_torchs_clamped_value():
    # p = 0 with target 1 and p = 1 with target 0: log 0 = −inf, clamped at −100 by torch;
    # the backward divides by max(p(1 − p), ε) with torch's CPU ε, float32's 1e-12.
    params, y = {"p": np.array([0.0, 1.0, 0.25])}, np.array([1.0, 0.0, 1.0])
    graph = shadow_torch(bce_loss, params, np.zeros((3, 1)), y, user_file=__file__)
    value, grads = torch_value_and_grad(bce_loss, params, np.zeros((3, 1)), y)
    assert np.isfinite(graph.loss.f) and np.isfinite(graph.grads["p"].f).all()
    with hp.working_precision():
        expected = (200 - hp.log(hp.constant(0.25)).v[()]) / 3
        assert abs(graph.loss.v[()] - expected) <= 1e-55
    saturated = np.array([-1.0, 1.0]) / BCE_EPSILON / 3  # not the 1e-12 of the decomposition
    np.testing.assert_allclose(graph.grads["p"].f[:2], saturated, rtol=1e-15)
    assert_within_bound(graph.loss, value)
    assert_within_bound(graph.grads["p"], grads["p"])


# --- Where a step comes from, what goes wrong ---------------------------------------------------


LOSS_FILE = """\
import torch
import torch.nn.functional as F


def loss_torch(params, X, y):
    u = X @ params["w"]
    h = F.gelu(u, approximate="tanh")
    return torch.mean((h - y) ** 2)


def loss_nan(params, X, y):
    p = X @ params["w"]
    return torch.sum(0 * torch.log(p))


def loss_lgamma(params, X, y):
    return torch.sum(torch.lgamma(X @ params["w"]))
"""


@pytest.fixture
def loss_file(tmp_path):
    path = tmp_path / "port.py"
    path.write_text(textwrap.dedent(LOSS_FILE))
    spec = importlib.util.spec_from_file_location("port_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, str(path)


def test_steps_carry_the_users_file_line_and_code(loss_file):
    module, path = loss_file
    X, y = rng.normal(size=(5, 3)), rng.normal(size=5)
    graph = shadow_torch(module.loss_torch, {"w": rng.normal(size=3)}, X, y, user_file=path)
    tanhs = [s for s in graph.steps if s.op == "aten.tanh.default"]
    assert {s.phase for s in tanhs} == {FORWARD, BACKWARD}  # gelu's and gelu_backward's
    for step in tanhs:
        assert (step.file, step.line) == (path, 7)
        assert step.code == 'h = F.gelu(u, approximate="tanh")'
    (matmul,) = [s for s in graph.steps if s.phase == FORWARD and s.op == "aten.mv.default"]
    assert matmul.line == 6 and graph.steps[graph.outputs["w"]].line == 6  # x·w's backward
    assert [graph.steps[i].name for i in matmul.inputs] == ["X", "w"]


def test_a_nan_names_the_step_that_made_it_and_its_line(loss_file):
    module, path = loss_file
    X, y = np.array([[1.0, -1.0], [2.0, 1.0]]), np.zeros(2)
    with pytest.raises(hp.NotDifferentiable) as caught:
        shadow_torch(module.loss_nan, {"w": np.array([1.0, 1.0])}, X, y, user_file=path)
    message = str(caught.value)
    assert message.startswith("loss_torch: aten.log.default at ")
    assert f"{path}:13" in message and "log of 0" in message
    assert "return torch.sum(0 * torch.log(p))" in message


def test_an_op_without_a_rule_is_unsupported_and_named(loss_file):
    module, path = loss_file
    X, y = rng.random(size=(4, 2)) + 1, np.zeros(4)
    with pytest.raises(hp.UnsupportedOperation, match=f"aten.lgamma.default at {path}:17"):
        shadow_torch(module.loss_lgamma, {"w": np.array([1.0, 2.0])}, X, y, user_file=path)


# --- More of the op table, against torch's own float64 -----------------------------------------


def attention(p, X, y):
    q, k, v = (X @ p[name] for name in ("q", "k", "v"))
    scores = (q @ k.T) / 2.0
    scores = scores.masked_fill(torch.triu(torch.ones(6, 6, dtype=torch.bool), 1), -torch.inf)
    h = F.layer_norm(X + torch.softmax(scores, -1) @ v, (4,))
    return torch.mean((F.gelu(h, approximate="tanh").sum(-1) - y) ** 2)


def sdpa(p, X, y):
    q, k, v = ((X @ p[name]).reshape(6, 2, 2).transpose(0, 1) for name in ("q", "k", "v"))
    a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(6, 4)
    return F.smooth_l1_loss(a.sum(-1), y)


def reductions(p, X, y):
    z = X @ p["q"]
    return (
        z.std(0).sum()
        + z.var(1, correction=0).sum()
        + torch.logsumexp(z, -1).mean()
        + z.amax(1).sum()
        + z.max(dim=0).values.sum()
        + torch.cumsum(z, 0).pow(2).mean()
        + torch.linalg.vector_norm(z, dim=1).sum()
        + torch.prod(z[:2], 0).sum()
    )


def indexing(p, X, y):
    labels = (torch.abs(y) * 3).long() % 4
    z = X @ p["q"]
    a, b = z.split([1, 3], dim=1)
    out = torch.zeros(4, 4, dtype=torch.float64).index_add(0, labels, z)
    return (
        (torch.cat([a * 2, b], 1)[:, ::2] ** 2).sum()
        + F.embedding(labels, p["k"]).sum()
        + torch.gather(z, 1, labels[:, None]).sum()
        + (out**2).sum()
        + z.masked_fill(z > 0.3, 0.0).sum()
        + F.pad(z, (1, 1)).pow(3).sum()
    )


def activations(p, X, y):
    z = X @ p["q"]
    return (
        F.softplus(z)
        + F.silu(z)
        + F.elu(z)
        + F.leaky_relu(z, 0.1)
        + F.hardtanh(z)
        + torch.clamp(z, -0.5, 0.5)
        + torch.maximum(z, z.flip(0))
        + torch.where(z > 0, z, z * z)
        + F.logsigmoid(z)
        + torch.sin(z) * torch.atan(z)
        + (z * z + 1).rsqrt()
    ).sum()


@pytest.mark.parametrize("loss", [attention, sdpa, reductions, indexing, activations])
def test_torch_float64_lies_within_the_shadows_bound(loss):
    params = {name: rng.normal(size=(4, 4)) / 2 for name in ("q", "k", "v")}
    X, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    graph = shadow_torch(loss, params, X, y, user_file=__file__)
    value, grads = torch_value_and_grad(loss, params, X, y)
    assert_within_bound(graph.loss, value)
    for k in params:
        assert_within_bound(graph.grads[k], grads[k])
