"""What the torch backends share: inputs handed to torch without copying, fresh leaves, and
the loss a torch backend differentiates (the file's ``loss_torch``, else the generic one)."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem


def torch_inputs(problem: Problem, dtype: DType, leaves: bool = True):
    """(params as fresh leaf tensors requiring grad — plain tensors unless ``leaves`` — X, y)
    in ``dtype``.

    X and y share memory with gradcmp's read-only numpy arrays (``torch.from_numpy``); torch
    warns about non-writable arrays, which is harmless here because the loss never writes.
    """
    import warnings

    import torch

    X, y = problem.inputs(dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    params = {
        k: torch.from_numpy(v).requires_grad_(leaves)
        for k, v in problem.params.as_dtype(dtype).items()
    }
    return params, X_t, y_t


def torch_loss(problem: Problem):
    """(loss(params, X, y), side): ``loss_torch`` where the model has one, else the generic
    loss with ``xp`` = array-api-compat's torch namespace."""
    import array_api_compat.torch as xp

    return problem.model.loss_for("torch", xp)
