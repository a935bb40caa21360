"""A float32 GPU result computed with TF32 matrix products disagrees, and its note names the
setting and the line that turns it off; with the fix the same backend agrees. A real bug on a
GPU that allows TF32 is not explained away.

No GPU here: the backend emulates what a tensor core does with a float32 product (each operand
rounded to TF32's 10 fraction bits, the products summed in float32) and reports the device and
settings a CUDA run records (backends/devices.py). The numbers are computed, not made up.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradcmp
from gradcmp import backends as backends_module
from gradcmp.backends.base import Output
from gradcmp.judging.precision import BF16, JAX_FIX, TF32, TORCH_FIX, allows_reduced

torch = pytest.importorskip("torch")


def tf32(t):
    """A float32 tensor as TF32 holds it: 10 fraction bits, rounded to nearest (ties away)."""
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0x1000) & -0x2000).view(torch.float32)


class TF32MatMul(torch.autograd.Function):
    """a @ b on TF32 operands, forward and backward (as cuBLAS with TF32 allowed)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return tf32(a) @ tf32(b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        if b.ndim == 1:
            return torch.outer(tf32(g), tf32(b)), tf32(a).T @ tf32(g)
        return tf32(g) @ tf32(b).T, tf32(a).T @ tf32(g)


class EmulatedGPU:
    """torch-grad on the mlp as a GPU runs it: TF32 products unless --matmul-precision highest
    turns them off; ``bug`` scales one gradient element."""

    requires = ("torch",)
    dtypes = ("float32",)

    def __init__(self, name, settings_key="torch", bug=0.0, whole=False, emulate=True):
        self.name, self.description = name, "torch-grad, TF32 products emulated"
        self.settings_key, self.bug, self.whole, self.emulate = settings_key, bug, whole, emulate

    def setup(self) -> None:
        pass

    def compute(self, problem, dtype):
        from gradcmp.backends._torch import to_numpy, torch_inputs
        from gradcmp.dtypes import DTYPES

        # A whole-answer bug in float64: a clean multiple of the truth, as bug_kind needs.
        params, X, y = torch_inputs(problem, DTYPES["float64"] if self.whole else dtype)
        highest = problem.matmul_precision == "highest"
        matmul = torch.matmul if highest or not self.emulate else TF32MatMul.apply
        h = X
        layers = sum(1 for k in params if k.startswith("W"))
        for layer in range(1, layers + 1):
            h = torch.tanh(matmul(h, params[f"W{layer}"]) + params[f"b{layer}"])
        r = matmul(h, params["w_out"]) + params["b_out"] - y
        loss = torch.mean(r * r) / 2
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        grads = {k: to_numpy(g) for k, g in grads.items()}
        grads["W1"] = grads["W1"] * (1 + self.bug)
        if self.whole:  # loss and gradient scaled: a bug of a kind gradcmp names
            grads = {k: v * (1 + self.bug) if k != "W1" else v for k, v in grads.items()}
            loss = loss * (1 + self.bug)
        if self.settings_key == "jax":
            settings = {"jax_default_matmul_precision": "highest" if highest else None}
        else:
            settings = {"torch_allow_tf32_matmul": not highest}
        return Output(to_numpy(loss), grads, device="cuda", settings=settings)


def data(rows=64):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(rows, 5))
    return X, X @ np.linspace(-1, 1, 5) + 0.1 * rng.normal(size=rows)


def check(monkeypatch, backend, precision="default", rows=64, hidden=(16,)):
    monkeypatch.setitem(backends_module.BACKENDS, backend.name, backend)
    return gradcmp.compare(
        data(rows),
        "mlp",
        hidden=hidden,
        backends=[backend.name],
        dtypes=["float32"],
        matmul_precision=precision,
    ).results[0]


@pytest.mark.parametrize(("framework", "fix"), [("torch", TORCH_FIX), ("jax", JAX_FIX)])
def test_tf32_products_disagree_and_the_note_names_the_fix(monkeypatch, framework, fix):
    result = check(monkeypatch, EmulatedGPU("gpu-emulated", framework))
    assert result.verdict == "disagree"
    worst = max(e.ratio for e in result.errors.values())
    assert 1 < worst <= 2**13  # beyond float32's bound, within TF32's
    assert "consistent with TF32 matrix products" in result.why
    assert fix in result.why
    assert "--matmul-precision highest" in result.why


def test_tf32_within_a_loose_bound_agrees_and_the_note_names_it(monkeypatch):
    """A 5-300-300-1 MLP (92k parameters): the worst-case bound is wide enough to hold TF32's
    errors (the result agrees), but their median is TF32's, not float32's: a note says so."""
    result = check(monkeypatch, EmulatedGPU("gpu-emulated"), rows=20, hidden=(300, 300))
    assert result.verdict == "agree"
    assert "its errors are TF32 products', not float32's" in result.note
    assert TORCH_FIX in result.note


def test_a_float32_gpu_result_without_tf32_gets_no_note(monkeypatch):
    """Settings that allow TF32, products computed in full float32: nothing to name."""
    result = check(monkeypatch, EmulatedGPU("gpu-emulated", emulate=False, bug=0.0))
    assert result.verdict == "agree" and "TF32" not in result.note


def test_with_tf32_turned_off_the_same_backend_agrees(monkeypatch):
    result = check(monkeypatch, EmulatedGPU("gpu-emulated"), precision="highest")
    assert result.verdict == "agree", result.why


def test_a_sign_error_is_not_explained_as_tf32(monkeypatch):
    result = check(monkeypatch, EmulatedGPU("gpu-emulated", bug=-2.0))
    assert result.verdict == "disagree"
    assert "TF32" not in result.why


def test_a_small_bug_named_tf32_still_disagrees_with_tf32_off(monkeypatch):
    """The limit of the diagnosis, and the way out the note gives: a ×(1 + 1e-4) error in
    one weight is within TF32's reach; with TF32 off it still disagrees."""
    backend = EmulatedGPU("gpu-emulated", bug=1e-4)
    assert "TF32" in check(monkeypatch, backend).why
    assert check(monkeypatch, backend, precision="highest").verdict == "disagree"


def test_a_doubled_gradient_on_many_rows_is_not_explained_as_tf32(monkeypatch):
    """On 2000 rows τ·2¹³ reaches the values themselves: the window alone would take a ×2
    error in one weight matrix for TF32. The magnitude test refuses it."""
    result = check(monkeypatch, EmulatedGPU("gpu-emulated", bug=1.0), rows=2000)
    assert result.verdict == "disagree"
    assert "TF32" not in result.why


def test_a_bug_gradcmp_names_keeps_its_name_where_tf32_was_allowed(monkeypatch):
    """Loss and gradient ×2 (a missing ½), computed without TF32 on a GPU whose settings allow
    it: the bug's kind is named, not TF32."""
    backend = EmulatedGPU("gpu-emulated", bug=1.0, whole=True, emulate=False)
    result = check(monkeypatch, backend, rows=2000)
    assert result.verdict == "disagree"
    assert "TF32" not in result.why and "×2" in result.why, result.why


def test_which_settings_allow_reduced_precision():
    assert allows_reduced({"torch_allow_tf32_matmul": False}) is None
    assert allows_reduced({"torch_float32_matmul_precision": "highest"}) is None
    assert allows_reduced(None) is None
    assert allows_reduced({"torch_allow_tf32_matmul": True})[2] == TF32
    assert allows_reduced({"torch_float32_matmul_precision": "medium"})[2] == BF16
    for full in ("highest", "HIGHEST", "float32", "F32_F32_F32", "BF16_BF16_F32_X6"):
        assert allows_reduced({"jax_default_matmul_precision": full}) is None, full
    assert allows_reduced({"jax_default_matmul_precision": None})[2] == TF32
    assert allows_reduced({"jax_default_matmul_precision": "tensorfloat32"})[2] == TF32
    assert allows_reduced({"jax_default_matmul_precision": "bfloat16"})[2] == BF16
    # NVIDIA_TF32_OVERRIDE=0 turns TF32 off underneath the frameworks (bf16 stays as asked).
    off = {"nvidia_tf32_override": "0"}
    assert allows_reduced({"torch_allow_tf32_matmul": True, **off}) is None
    assert allows_reduced({"jax_default_matmul_precision": None, **off}) is None
    assert allows_reduced({"jax_default_matmul_precision": "bfloat16", **off})[2] == BF16
