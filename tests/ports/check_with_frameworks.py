"""Run every corpus file with plain PyTorch and JAX in float64 and hold the two sides together.

    .venv/bin/python tests/ports/check_with_frameworks.py            # the whole corpus
    .venv/bin/python tests/ports/check_with_frameworks.py FILE.py [--data CSV] [--expect KIND]

No gradcmp here: each side is differentiated by its own framework (torch autograd, JAX
``value_and_grad`` with x64 on), and the script prints the loss of each side, the relative
difference of the losses and the largest relative difference of a gradient between the sides
(per parameter, in the max norm: ‖g_torch − g_jax‖∞ / max(‖g_torch‖∞, ‖g_jax‖∞)). What each
kind must show:

    trap   loss and gradient both differ by more than 1e-9 (relative)
    twin   loss and gradient both agree to within 1e-12
    kink   loss agrees to within 1e-12, gradient differs by more than 1e-9

It exits 1 when an entry does not behave. It is not a pytest file (its name does not start
with ``test_``): it imports torch and JAX and turns JAX's x64 on for the whole process.

PARAMS may be a dict (name → number or nested list), a function returning one, or the name of
an ``.npz`` file next to the loss file whose arrays are the parameters (the contract of
examples/transformer_block/loss.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import CORPUS  # noqa: E402

SAME = 1e-12  # twins: at most this far apart
APART = 1e-9  # traps (and kink gradients): at least this far apart


def load_module(path: Path):
    path = Path(path).resolve()
    spec = importlib.util.spec_from_file_location(f"port_{path.stem}_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_params(module, path: Path) -> dict[str, np.ndarray]:
    params = module.PARAMS
    if callable(params):
        params = params()
    if isinstance(params, str):
        with np.load(Path(path).resolve().parent / params) as archive:
            params = {name: archive[name] for name in archive.files}
    return {name: np.array(value, dtype=np.float64) for name, value in params.items()}


def load_csv(path: Path, target: str = "y") -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8") as handle:
        header = [cell.strip() for cell in handle.readline().split(",")]
    table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
    j = header.index(target)
    return np.delete(table, j, axis=1), table[:, j].copy()


def run_torch(module, params, X, y):
    import torch

    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    value = module.loss_torch(tensors, torch.tensor(X), torch.tensor(y))
    value.backward()
    grads = {
        k: (t.grad.numpy() if t.grad is not None else np.zeros_like(params[k]))
        for k, t in tensors.items()
    }
    return float(value.detach()), grads


def run_jax(module, params, X, y):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    arrays = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
    value, grads = jax.value_and_grad(module.loss_jax)(arrays, jnp.asarray(X), jnp.asarray(y))
    return float(value), {k: np.asarray(g, dtype=np.float64) for k, g in grads.items()}


def relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(np.max(np.abs(a)), np.max(np.abs(b)))
    diff = np.max(np.abs(a - b))
    return 0.0 if diff == 0 else float(diff / scale) if scale > 0 else float("inf")


def compare(path: Path, data: Path):
    """(loss_torch, loss_jax, relative loss difference, largest relative gradient difference,
    the parameter where it is)."""
    module = load_module(path)
    params = load_params(module, path)
    X, y = load_csv(data)
    lt, gt = run_torch(module, params, X, y)
    lj, gj = run_jax(module, params, X, y)
    worst, name = 0.0, ""
    for key in params:
        r = relative(gt[key], gj[key])
        if r >= worst:
            worst, name = r, key
    return lt, lj, relative(lt, lj), worst, name


def behaves(kind: str, loss_rel: float, grad_rel: float) -> bool:
    if kind == "trap":
        return loss_rel > APART and grad_rel > APART
    if kind == "twin":
        return loss_rel < SAME and grad_rel < SAME
    if kind == "kink":
        return loss_rel < SAME and grad_rel > APART
    raise ValueError(kind)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="loss files (default: the corpus)")
    parser.add_argument("--data", type=Path, help="data file for FILES (default: their DATA)")
    parser.add_argument("--expect", choices=("trap", "twin", "kink"), help="kind for FILES")
    args = parser.parse_args(argv)

    if args.files:
        rows = []
        for path in args.files:
            module = load_module(path)
            folder = Path(path).resolve().parent
            data = args.data or next(
                (f / module.DATA for f in (folder, folder / "data") if (f / module.DATA).is_file()),
                folder / module.DATA,
            )
            kind = args.expect or ("trap" if "TRAP" in Path(path).read_text() else "twin")
            rows.append((Path(path).name, data, kind, "", "", Path(path)))
    else:
        rows = [
            (e.file.name, e.data, e.kind, e.side, "" if e.line is None else e.line, e.file)
            for e in CORPUS
        ]

    width = max(len(r[0]) for r in rows)
    print(
        f"{'file':<{width}}  {'kind':<4}  {'side':<10} {'line':>4}  {'loss torch':>22}  "
        f"{'loss jax':>22}  {'Δloss rel':>9}  {'Δgrad rel':>9} {'(param)':<8}  ok"
    )
    failures = 0
    counts = {"trap": 0, "twin": 0, "kink": 0}
    for name, data, kind, side, line, path in rows:
        lt, lj, loss_rel, grad_rel, where = compare(path, data)
        ok = behaves(kind, loss_rel, grad_rel)
        failures += not ok
        counts[kind] += 1
        print(
            f"{name:<{width}}  {kind:<4}  {side:<10} {line!s:>4}  {lt:>22.16g}  {lj:>22.16g}  "
            f"{loss_rel:>9.2e}  {grad_rel:>9.2e} {where:<8}  {'ok' if ok else 'FAIL'}"
        )
    summary = ", ".join(f"{n} {k}s" for k, n in counts.items() if n)
    print(f"{len(rows)} files ({summary}): {failures or 'no'} failure{'s' * (failures != 1)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
