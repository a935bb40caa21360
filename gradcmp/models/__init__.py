"""Built-in models, one file each, registered by name: adding one is a new file and a line here."""

from __future__ import annotations

from ..errors import UsageError
from . import linear
from .base import Model

MODELS: dict[str, Model] = {
    linear.MODEL.name: linear.MODEL,
}


def get_model(name: str) -> Model:
    if name not in MODELS:
        raise UsageError(f"unknown model {name!r}", hint=f"choose from {', '.join(MODELS)}")
    return MODELS[name]


__all__ = ["MODELS", "Model", "get_model"]
