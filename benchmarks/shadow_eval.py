"""Time of the shadow evaluation of a port: each side's own graph, value and gradient, traced and
evaluated in 200-bit MPFR with the running error bound.

    python benchmarks/shadow_eval.py [--loss examples/transformer_block/loss.py] [--repeat 3]

Prints, per side: parameters, graph steps, the median over ``--repeat`` runs of trace +
evaluation (one evaluation, the float64 inputs), and the spread. Also the op coverage of that
file: which primitives / ATen ops its graphs need.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from gradcmp.loading import data as data_module
from gradcmp.loading import lossfile
from gradcmp.params import Params
from gradcmp.problem import Problem
from gradcmp.reference.sides import TRACERS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "examples" / "transformer_block" / "loss.py"


def problem_for(loss_path: Path, data_path: Path | None) -> Problem:
    model = lossfile.load(loss_path)
    if data_path is None:
        data_path = loss_path.parent / getattr(_module_of(loss_path), "DATA", "data.csv")
    dataset = data_module.load(data_path)
    return Problem(model, dataset, Params.from_arrays(model.initial_params(dataset)))


def _module_of(path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("gradcmp_bench_loss", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", type=Path, default=DEFAULT)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    problem = problem_for(args.loss, args.data)
    X, y = problem.data.X, problem.data.y
    params = {k: np.asarray(v, dtype=np.float64) for k, v in problem.params.values.items()}
    count = sum(v.size for v in params.values())
    print(f"{args.loss}: {count} parameters, {problem.data.rows} rows × {problem.data.features}")
    import importlib

    for side in problem.model.sides:
        framework = side.removeprefix("loss_")
        module, function = TRACERS[framework]
        shadow = getattr(importlib.import_module(f"gradcmp.reference.{module}"), function)
        fn = problem.model.framework_losses[framework]
        times, graph = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            graph = shadow(fn, params, X, y, side=side, user_file=str(args.loss))
            times.append(time.perf_counter() - start)
        ops = sorted({s.op for s in graph.steps if s.phase != "input"})
        print(
            f"  {side}: {len(graph.steps)} steps, median {statistics.median(times):.2f} s "
            f"(min {min(times):.2f}, max {max(times):.2f}) over {args.repeat} runs"
        )
        print(f"    ops ({len(ops)}): {', '.join(ops)}")


if __name__ == "__main__":
    main()
