"""``torch-grad``: ``torch.autograd.grad(loss, params)``."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from ._torch import torch_inputs
from .base import Output


class TorchGrad:
    name = "torch-grad"
    description = "torch.autograd.grad(loss, params)"
    requires = ("torch",)
    dtypes = ("float64", "float32")

    def setup(self) -> None:
        import torch  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        import torch

        params, X, y = torch_inputs(problem, dtype)
        with torch.enable_grad():
            loss = problem.model.loss(params, X, y, torch)
            grads = torch.autograd.grad(loss, list(params.values()))
        return Output(loss.detach().numpy(), dict(zip(params, (g.numpy() for g in grads))))
