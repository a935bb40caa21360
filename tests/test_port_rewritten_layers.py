"""Correct ports written differently (an exact-zero key-bias gradient, a bias before a layer
norm, masked attention, noise around 0 in the float64 fallback) are the same function, and a
one-line bug in a port that also rearranges its algebra is located at its own line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import gradcmp

pytest.importorskip("torch")
pytest.importorskip("jax")

DATA = Path(__file__).parent / "ports" / "data" / "features4.csv"


def _run(tmp_path, source: str, backends: str = "torch-grad,jax-grad"):
    path = tmp_path / "port.py"
    path.write_text(textwrap.dedent(source))
    return gradcmp.compare(str(DATA), loss=str(path), backends=backends, dtypes="float64")


# Protects: a parameter whose gradient is exactly 0 in exact arithmetic (a key bias: softmax is
# invariant to a per-query constant, as in BERT/ViT attention) is no false alarm. Its 200-bit
# shadow values are rounding noise (~1e-61) that differs between the two graphs; the per-tensor
# cap on M in port._compare shrinks the threshold to 2**-40 of that noise, so this correct port
# is called `different` today.
KEY_BIAS = """
PARAMS = {"Wq": [[0.3,-0.2],[0.1,0.4],[-0.5,0.2],[0.2,0.1]],
          "Wk": [[0.2,0.1],[-0.3,0.5],[0.4,-0.1],[0.1,0.3]], "bk": [0.1, -0.2],
          "Wv": [[0.5,0.1],[0.2,-0.4],[-0.1,0.3],[0.3,0.2]], "wo": [0.7,-0.6]}
def loss_torch(params, X, y):
    import torch
    q, k, v = X @ params["Wq"], X @ params["Wk"] + params["bk"], X @ params["Wv"]
    a = torch.softmax(q @ k.T / 2 ** 0.5, dim=-1)
    return torch.nn.functional.mse_loss((a @ v) @ params["wo"], y)
def loss_jax(params, X, y):
    import jax, jax.numpy as jnp
    q, k, v = X @ params["Wq"], X @ params["Wk"] + params["bk"], X @ params["Wv"]
    a = jax.nn.softmax(q @ k.T / 2 ** 0.5, axis=-1)
    return jnp.mean(((a @ v) @ params["wo"] - y) ** 2)
"""


def test_attention_key_bias_with_zero_gradient_is_same(tmp_path):
    report = _run(tmp_path, KEY_BIAS)
    assert report.port.verdict == "same", report.port.note
    assert report.exit_code == 0


# Protects: the same, for a scalar bias added before a layer norm (shift invariance): torch's
# F.layer_norm against a hand-written JAX layer norm.
LN_BIAS = """
PARAMS = {"W": [[0.5, -0.3, 0.8], [-0.6, 0.4, 0.2], [0.3, 0.7, -0.5], [-0.2, -0.4, 0.6]],
          "b": 0.1, "w2": [0.9, -0.7, 0.4]}
def loss_torch(params, X, y):
    import torch.nn.functional as F
    h = F.layer_norm(X @ params["W"] + params["b"], (3,))
    return F.mse_loss(h @ params["w2"], y)
def loss_jax(params, X, y):
    import jax.numpy as jnp
    u = X @ params["W"] + params["b"]
    mu = jnp.mean(u, -1, keepdims=True)
    var = jnp.mean((u - mu) ** 2, -1, keepdims=True)
    h = (u - mu) / jnp.sqrt(var + 1e-5)
    return jnp.mean((h @ params["w2"] - y) ** 2)
"""


def test_bias_before_layer_norm_is_same(tmp_path):
    report = _run(tmp_path, LN_BIAS)
    assert report.port.verdict == "same", report.port.note


# Protects: the `unknown` fallback (sides.compare_float64_rows) does not call a correct port
# `different` because one gradient element is float64 rounding noise around an exact 0 (here
# the sum of centred data, computed in two orders); lgamma has no shadow rule on either side.
UNKNOWN_NOISE = """
PARAMS = {"w": [0.6, -0.4, 0.3, 0.2], "b": 0.1, "c": 0.5}
def loss_torch(params, X, y):
    import torch
    z = torch.exp(X @ params["w"] + params["b"])
    centred = (X - X.mean(0)).sum(0)
    weights = torch.tensor([0.3, 0.7, 1.1, 1.3], dtype=X.dtype)
    penalty = params["c"] * (centred * weights).sum()
    return (torch.lgamma(z + 1.0) - y * torch.log(z)).mean() + penalty
def loss_jax(params, X, y):
    import jax, jax.numpy as jnp
    z = jnp.exp(X @ params["w"] + params["b"])
    centred = jnp.sum(X - jnp.sum(X, 0) / X.shape[0], 0)
    extra = params["c"] * jnp.dot(centred, jnp.array([0.3, 0.7, 1.1, 1.3]))
    return jnp.mean(jax.scipy.special.gammaln(z + 1.0) - y * jnp.log(z)) + extra
"""


def test_unknown_fallback_ignores_noise_around_zero(tmp_path):
    report = _run(tmp_path, UNKNOWN_NOISE)
    assert report.port.verdict == "unknown", report.port.note
    assert report.exit_code == 0


# Protects: the located line of a single-line bug (eps 1e-6 against torch's 1e-5) in a port
# that also rearranges the algebra ((x − μ)·γ as x·γ − μ·γ): the root cause is the eps line,
# not the first side-only intermediate (today it names `scaled = X * params["gamma"]`).
REORDERED = """
PARAMS = {"gamma": [1.1, 0.9, 1.2, 0.8], "beta": [0.1, -0.1, 0.05, 0.0],
          "w": [0.5, -0.6, 0.7, 0.3], "b": 0.2}
def loss_torch(params, X, y):
    import torch.nn.functional as F
    h = F.layer_norm(X, (4,), params["gamma"], params["beta"])
    return F.mse_loss(h @ params["w"] + params["b"], y)
def loss_jax(params, X, y):
    import jax.numpy as jnp
    mu = jnp.mean(X, axis=-1, keepdims=True)
    var = jnp.var(X, axis=-1, keepdims=True)
    scaled = X * params["gamma"]
    shift = mu * params["gamma"]
    std = jnp.sqrt(var + 1e-6)  # the bug
    h = (scaled - shift) / std + params["beta"]
    return jnp.mean((h @ params["w"] + params["b"] - y) ** 2)
"""


def test_bug_in_a_rearranged_port_is_located_at_its_line(tmp_path):
    report = _run(tmp_path, REORDERED)
    assert report.port.verdict == "different"
    jax_side = [d for d in report.port.divergence if d.side == "loss_jax"]
    bug_line = 1 + textwrap.dedent(REORDERED).splitlines().index(
        "    std = jnp.sqrt(var + 1e-6)  # the bug"
    )
    assert jax_side and jax_side[0].line == bug_line, report.port.note


# Protects (passes today): masked attention with -inf (torch masked_fill + softmax against a
# hand-written JAX softmax with jnp.where(mask, s, -inf)) is the same function, no row disagrees.
MASKED = """
PARAMS = {"Wq": [[0.3,-0.2],[0.1,0.4],[-0.5,0.2],[0.2,0.1]],
          "Wk": [[0.2,0.1],[-0.3,0.5],[0.4,-0.1],[0.1,0.3]],
          "Wv": [[0.5,0.1],[0.2,-0.4],[-0.1,0.3],[0.3,0.2]], "wo": [0.7,-0.6]}
def loss_torch(params, X, y):
    import torch
    q, k, v = X @ params["Wq"], X @ params["Wk"], X @ params["Wv"]
    n = X.shape[0]
    mask = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    a = torch.softmax((q @ k.T / 2 ** 0.5).masked_fill(mask, float("-inf")), dim=-1)
    return torch.nn.functional.mse_loss((a @ v) @ params["wo"], y)
def loss_jax(params, X, y):
    import jax.numpy as jnp
    q, k, v = X @ params["Wq"], X @ params["Wk"], X @ params["Wv"]
    n = X.shape[0]
    s = jnp.where(jnp.tril(jnp.ones((n, n), bool)), q @ k.T / jnp.sqrt(2.0), -jnp.inf)
    e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
    a = e / e.sum(-1, keepdims=True)
    return jnp.mean((jnp.einsum("ij,jd,d->i", a, v, params["wo"]) - y) ** 2)
"""


def test_masked_attention_port_is_same(tmp_path):
    report = _run(tmp_path, MASKED)
    assert report.port.verdict == "same", report.port.note
    assert report.exit_code == 0
    assert all(r.verdict != "disagree" for r in report.results)
