"""Write weights.npz (the seeded initial weights of model_torch.build()) and data.csv.

    .venv/bin/python examples/transformer_block/make_weights.py

weights.npz: one float64 array per parameter, named by model_torch.state_names (the
``state_dict`` key with dots turned into underscores), shaped as in PyTorch. 112,129 numbers:
about 0.9 MB.

data.csv: one sequence of 32 tokens, one row per token: the 96 columns x0..x95 are its
embedding, y the target of the read-out at that token (a noisy running mean of the first
eight embedding coordinates). Three decimals, from a fixed numpy seed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEQ_LEN = 32


def _model_torch():
    spec = importlib.util.spec_from_file_location("model_torch", HERE / "model_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def weights() -> dict[str, np.ndarray]:
    model_torch = _model_torch()
    module = model_torch.build()
    state = module.state_dict()
    return {
        name: state[key].detach().numpy().astype(np.float64)
        for name, key in model_torch.state_names(module).items()
    }


def data(seed=0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(0.0, 1.0, size=(SEQ_LEN, _model_torch().D_MODEL)), 3)
    running = np.cumsum(X[:, :8].mean(axis=1)) / np.arange(1, SEQ_LEN + 1)
    y = np.round(2.0 * running + rng.normal(0.0, 0.1, SEQ_LEN), 3)
    return X, y


def main():
    arrays = weights()
    np.savez(HERE / "weights.npz", **arrays)
    X, y = data()
    header = ",".join([f"x{j}" for j in range(X.shape[1])] + ["y"])
    rows = [",".join(f"{v:.3f}" for v in [*row, target]) for row, target in zip(X, y)]
    (HERE / "data.csv").write_text("\n".join([header, *rows]) + "\n")
    total = sum(a.size for a in arrays.values())
    size = (HERE / "weights.npz").stat().st_size
    print(f"weights.npz: {len(arrays)} arrays, {total:,} parameters, {size:,} bytes")
    print(f"data.csv: {X.shape[0]} tokens × {X.shape[1]} features + y")


if __name__ == "__main__":
    main()
