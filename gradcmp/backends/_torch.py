"""What the torch backends share: inputs handed to torch without copying, fresh leaves."""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem


def torch_inputs(problem: Problem, dtype: DType):
    """(params as fresh leaf tensors requiring grad, X, y) in ``dtype``.

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
        k: torch.from_numpy(v).requires_grad_(True)
        for k, v in problem.params.as_dtype(dtype).items()
    }
    return params, X_t, y_t
