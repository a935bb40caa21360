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
    On a GPU (``torch-grad@cuda``, devices.py) they are copied there, the same values.
    """
    import warnings

    import torch

    from .devices import torch_device

    device = torch_device()
    X, y = problem.inputs(dtype)
    if dtype.name == "bfloat16":  # numpy has no bfloat16 torch can share: via float32, exactly

        def tensor(a):
            return torch.from_numpy(a.astype("float32")).to(device=device, dtype=torch.bfloat16)
    else:

        def tensor(a):
            return torch.from_numpy(a).to(device)  # on the CPU, the same memory

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        X_t = tensor(X)
        # class labels stay integers
        y_t = torch.from_numpy(y).to(device) if y.dtype.kind in "iu" else tensor(y)
    params = {
        k: tensor(v).requires_grad_(leaves) for k, v in problem.params.as_dtype(dtype).items()
    }
    return params, X_t, y_t


def to_numpy(tensor):
    """A result as a numpy float64 array (widening is exact; numpy has no bfloat16)."""
    import torch

    return tensor.detach().to(torch.float64).cpu().numpy()


def torch_loss(problem: Problem):
    """(loss(params, X, y), side): ``loss_torch`` where the model has one, else the generic
    loss with ``xp`` = array-api-compat's torch namespace."""
    import array_api_compat.torch as xp

    return problem.model.loss_for("torch", xp)
