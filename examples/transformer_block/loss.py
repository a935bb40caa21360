"""gradcmp loss file: a pre-LN transformer block (model_torch.py) and its JAX port.

    cd examples/transformer_block && gradcmp run --loss loss.py --data data.csv

The 32 rows of data.csv are one sequence of 32 tokens (x0..x63: the embeddings); the model
reads out one number per token, and the loss is the mean squared error against y.
``loss_torch`` runs the torch.nn module on the given parameters with
``torch.func.functional_call``; ``loss_jax`` runs the port (port_jax.py).

PARAMS names an .npz file next to this one: one float64 array per parameter, named by the
module's ``state_dict`` keys with dots turned into underscores (make_weights.py writes it).
"""

PARAMS = "weights.npz"
DATA = "data.csv"
CAUSAL = True


def _sibling(name):
    """The module ``name``.py of this folder (imported once, under a private name)."""
    import importlib.util
    import sys
    from pathlib import Path

    key = f"gradcmp_example_transformer_block_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


def loss_torch(params, X, y):
    import torch

    model_torch = _sibling("model_torch")
    module = model_torch.build(causal=CAUSAL)
    keys = model_torch.state_names(module)
    state = {keys[name]: value for name, value in params.items()}
    prediction = torch.func.functional_call(module, state, (X,))
    return torch.mean((prediction - y) ** 2)


def loss_jax(params, X, y):
    import jax.numpy as jnp

    port = _sibling("port_jax")
    prediction = port.forward(params, X, causal=CAUSAL)
    return jnp.mean((prediction - y) ** 2)
