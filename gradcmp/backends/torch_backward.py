"""``torch-backward``: ``loss.backward()``, then each parameter's ``.grad``."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from ._torch import to_numpy, torch_inputs, torch_loss
from .base import Output
from .blocks import in_blocks


class TorchBackward:
    name = "torch-backward"
    description = "loss.backward(), then each parameter's .grad (fresh leaves every call)"
    requires = ("torch",)
    dtypes = ("float64", "float32", "float16", "bfloat16")

    def setup(self) -> None:
        import torch  # noqa: F401

    def compute(self, problem: Problem, dtype: DType) -> Output:
        if (blocked := in_blocks(self.compute, problem, dtype)) is not None:
            return blocked  # data beyond the memory budget: row blocks (blocks.py)
        import torch

        # Fresh leaves every call: .grad accumulates across backward() calls on the same leaf.
        params, X, y = torch_inputs(problem, dtype)
        loss_fn, side = torch_loss(problem)
        with torch.enable_grad():
            loss = loss_fn(params, X, y)
            loss.backward()
        # A parameter the loss does not use (or detaches) keeps .grad None: its gradient is 0,
        # as torch.func and JAX give it; the note says so.
        unused = [k for k, p in params.items() if p.grad is None]
        grads = {
            k: to_numpy(p.grad if p.grad is not None else torch.zeros_like(p))
            for k, p in params.items()
        }
        notes = (f"not used by the loss (gradient 0): {', '.join(unused)}",) if unused else ()
        return Output(to_numpy(loss), grads, notes=notes, side=side)
