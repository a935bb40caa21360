"""``torch-grad``: ``torch.autograd.grad(loss, params)``."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from ._torch import to_numpy, torch_inputs, torch_loss
from .base import Output
from .blocks import in_blocks


class TorchGrad:
    name = "torch-grad"
    description = "torch.autograd.grad(loss, params)"
    requires = ("torch",)
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import torch  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        if (blocked := in_blocks(self.compute, problem, dtype)) is not None:
            return blocked  # data beyond the memory budget: row blocks (blocks.py)
        import torch

        params, X, y = torch_inputs(problem, dtype)
        loss_fn, side = torch_loss(problem)
        with torch.enable_grad():
            loss = loss_fn(params, X, y)
            # A parameter the loss does not use has gradient 0 (as in torch.func and JAX).
            grads = torch.autograd.grad(
                loss, list(params.values()), allow_unused=True, materialize_grads=True
            )
        grads = dict(zip(params, (to_numpy(g) for g in grads)))
        return Output(to_numpy(loss), grads, side=side)
