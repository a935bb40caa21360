"""Built-in models, one file each, registered by name: adding one is a new file and a line here."""

from __future__ import annotations

from ..errors import UsageError
from . import linear, logistic, mlp, softmax
from .base import DataShape, Model

MODELS: dict[str, Model] = {m.MODEL.name: m.MODEL for m in (linear, logistic, softmax, mlp)}


def get_model(name: str) -> Model:
    if name not in MODELS:
        raise UsageError(
            f"unknown model {name!r}", hint=f"choose from {', '.join(MODELS)}", option="model"
        )
    return MODELS[name]


__all__ = ["MODELS", "DataShape", "Model", "get_model"]
