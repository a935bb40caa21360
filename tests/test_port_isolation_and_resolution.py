"""A side's program is run in isolation (its crash or hang fails that side, never gradcmp nor the
other side), a τ beyond every value of its tensor is never resolved, integer labels reach a
port's sides, and a narrowing cast fails its side's float64 rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import gradcmp

pytest.importorskip("torch")
pytest.importorskip("jax")

HERE = Path(__file__).parent
FEATURES = HERE / "ports" / "data" / "features4.csv"


def _cli(tmp_path, source: str, *args: str, timeout: float = 60):
    """gradcmp in a fresh process (tracing forks only where JAX is not imported yet)."""
    loss = tmp_path / "port.py"
    loss.write_text(textwrap.dedent(source))
    command = [sys.executable, "-m", "gradcmp", "run", "--loss", str(loss), *args]
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


SEGV = """
PARAMS = {"w": [0.5, -0.3, 0.2, 0.1], "b": 0.0}
def loss_torch(params, X, y):
    import torch.nn.functional as F
    TORCH
    return F.mse_loss(X @ params["w"] + params["b"], y)
def loss_jax(params, X, y):
    import jax.numpy as jnp
    JAX
    return jnp.mean((X @ params["w"] + params["b"] - y) ** 2)
"""
CRASH = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"


# A loss_torch that crashes, with loss_jax failing too, once took gradcmp down (exit 139, no
# report): the all-sides fallback ran loss_torch in the main process. It now runs out of
# process: a report or one line, exit 3.
def test_a_crashing_torch_side_does_not_crash_gradcmp(tmp_path):
    source = SEGV.replace("TORCH", CRASH).replace("JAX", "pass")
    run = _cli(
        tmp_path,
        source,
        "--data",
        str(FEATURES),
        "-b",
        "torch-grad,jax-grad",
        "--dtype",
        "float64",
        "--format",
        "json",
        "--timeout",
        "20",
    )
    assert run.returncode == 3, (run.returncode, run.stderr[-500:])
    report = json.loads(run.stdout)
    assert report["port"]["verdict"] == "unknown"


# Each side is traced in a child of its own: a crash in loss_jax leaves loss_torch its
# reference, and torch-grad its verdict against its own graph.
def test_a_crashing_jax_side_leaves_the_torch_side_its_reference(tmp_path):
    source = SEGV.replace("TORCH", "pass").replace("JAX", CRASH)
    run = _cli(
        tmp_path,
        source,
        "--data",
        str(FEATURES),
        "-b",
        "torch-grad,jax-grad",
        "--dtype",
        "float64",
        "--format",
        "json",
    )
    report = json.loads(run.stdout)
    references = report["port"]["references"]
    assert not references["loss_torch"]["failure"], report["port"]["note"]
    assert "loss_jax" in report["port"]["note"]
    torch_row = next(r for r in report["results"] if r["backend"] == "torch-grad")
    assert torch_row["verdict"] == "agree", torch_row


# The generic loss's reference caps M at 100 × its tensor's largest value too: here a large
# offset c cancels (a variance), τ of w is ~17 while every w gradient is ≤ 3.1, and a
# hand-derived gradient that is half the truth must not be called `agree`.
CANCEL = """
PARAMS = {"w": [1.0, 0.5, -0.5, 0.25], "c": 1.0e15}
def loss(params, X, y, xp):
    z = X @ params["w"] + params["c"]
    return xp.mean((z - xp.mean(z)) ** 2)
def grad_native(params, X, y):
    import numpy as np
    Xc = np.asarray(X, dtype=float) - np.asarray(X, dtype=float).mean(0)
    g = 2 * ((Xc @ np.asarray(params["w"], dtype=float))[:, None] * Xc).mean(0)
    return {"w": list(0.5 * g), "c": 0.0}  # PLANTED: half the true gradient
"""


def test_generic_reference_tau_beyond_every_value_does_not_agree(tmp_path):
    path = tmp_path / "cancel.py"
    path.write_text(textwrap.dedent(CANCEL))
    report = gradcmp.compare(str(FEATURES), loss=str(path), backends="native", dtypes="float64")
    (row,) = report.results
    assert row.verdict != "agree", {k: (e.abs, e.bound) for k, e in row.errors.items()}


# Protects: LABELS = True reaches every side as integers: torch F.cross_entropy, JAX
# take_along_axis on log_softmax, and a generic loss with a one-hot by comparison are the same
# function, float32 and float64 rows agree, and a planted label smoothing on the JAX side
# (a one-hot mixed with 0.1/3) is `different`, located on the JAX side.
LABELED = """
LABELS = True
PARAMS = {"W": [[0.3,-0.2,0.1],[0.1,0.4,-0.3],[-0.5,0.2,0.2],[0.2,0.1,-0.1]],
          "b": [0.1,0.0,-0.1]}
def loss(params, X, y, xp):
    z = X @ params["W"] + params["b"]
    onehot = xp.astype(y[:, None] == xp.arange(3), z.dtype)
    return xp.mean(xp.log(xp.sum(xp.exp(z), axis=1)) - xp.sum(z * onehot, axis=1))
def loss_torch(params, X, y):
    import torch.nn.functional as F
    return F.cross_entropy(X @ params["W"] + params["b"], y)
def loss_jax(params, X, y):
    import jax, jax.numpy as jnp
    logp = jax.nn.log_softmax(X @ params["W"] + params["b"], axis=1)
    target = jax.nn.one_hot(y, 3)
    return -jnp.mean(jnp.sum(target * logp, axis=1))
"""
LABELS3 = HERE / "ports" / "data" / "labels3.csv"


def test_labels_port_same_and_smoothing_located(tmp_path):
    path = tmp_path / "ce.py"
    path.write_text(textwrap.dedent(LABELED))
    report = gradcmp.compare(
        str(LABELS3), loss=str(path), backends="torch-grad,jax-grad", dtypes="float32,float64"
    )
    assert report.port.verdict == "same", report.port.note
    assert all(r.verdict == "agree" for r in report.results), [r.verdict for r in report.results]
    buggy = textwrap.dedent(LABELED).replace(
        "jax.nn.one_hot(y, 3)", "jax.nn.one_hot(y, 3) * 0.9 + 0.1 / 3"
    )
    path.write_text(buggy)
    report = gradcmp.compare(str(LABELS3), loss=str(path), backends="jax-grad", dtypes="float64")
    assert report.port.verdict == "different"
    assert report.exit_code == 1
    assert any(d.side == "loss_jax" for d in report.port.divergence), report.port.note


# Protects: a narrowing cast inside the JAX side is no port difference (exact semantics are
# the same) but its float64 rows disagree with their own graph, naming the cast's line.
CAST = """
PARAMS = {"w": [0.5, -0.3, 0.2, 0.1], "b": 0.1}
def loss_torch(params, X, y):
    import torch.nn.functional as F
    return F.mse_loss(X @ params["w"] + params["b"], y)
def loss_jax(params, X, y):
    import jax.numpy as jnp
    p = (X @ params["w"]).astype(jnp.float32)
    return jnp.mean((p + params["b"] - y) ** 2)
"""


def test_narrowing_cast_in_a_side_fails_its_float64_row(tmp_path):
    path = tmp_path / "cast.py"
    path.write_text(textwrap.dedent(CAST))
    report = gradcmp.compare(
        str(FEATURES), loss=str(path), backends="torch-grad,jax-grad", dtypes="float64"
    )
    jax_row = next(r for r in report.results if r.backend == "jax-grad")
    assert jax_row.verdict == "disagree"
    assert "float32" in jax_row.why and "cast.py:8" in jax_row.why, jax_row.why
    assert report.exit_code == 1
