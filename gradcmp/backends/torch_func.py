"""``torch-func``: ``torch.func.grad_and_value`` — functorch's functional transform, which
differentiates a pure function of its parameters (no leaves, no ``.grad``)."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from ._torch import to_numpy, torch_inputs, torch_loss
from .base import Output
from .blocks import in_blocks


class TorchFunc:
    name = "torch-func"
    description = "torch.func.grad_and_value (functional, no .grad state)"
    requires = ("torch",)
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import torch.func  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        if (blocked := in_blocks(self.compute, problem, dtype)) is not None:
            return blocked  # data beyond the memory budget: row blocks (blocks.py)
        import torch
        import torch.func

        params, X, y = torch_inputs(problem, dtype, leaves=False)
        loss_fn, side = torch_loss(problem)
        with torch.enable_grad():
            grads, loss = torch.func.grad_and_value(lambda p: loss_fn(p, X, y))(params)
        return Output(to_numpy(loss), {k: to_numpy(g) for k, g in grads.items()}, side=side)
