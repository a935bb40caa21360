"""``torch-backward``: ``loss.backward()``, then each parameter's ``.grad``."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from ._torch import to_numpy, torch_inputs, torch_loss
from .base import Output


class TorchBackward:
    name = "torch-backward"
    description = "loss.backward(), then each parameter's .grad (fresh leaves every call)"
    requires = ("torch",)
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import torch  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        import torch

        # Fresh leaves every call: .grad accumulates across backward() calls on the same leaf.
        params, X, y = torch_inputs(problem, dtype)
        loss_fn, side = torch_loss(problem)
        with torch.enable_grad():
            loss = loss_fn(params, X, y)
            loss.backward()
        unused = [k for k, p in params.items() if p.grad is None]
        if unused:
            raise RuntimeError(f".grad is None for {', '.join(unused)}: not used by the loss")
        grads = {k: to_numpy(p.grad) for k, p in params.items()}
        return Output(to_numpy(loss), grads, side=side)
