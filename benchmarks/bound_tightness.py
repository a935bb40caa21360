"""How close correct backends come to the agreement rule's bound (the largest ratio = |err|/τ).

Random linear-regression problems — data scales 1e-6 … 1e6, n up to 1e5, with and without heavy
cancellation (y ≈ θ0 + θ1·x, evaluated at the fitted θ) — run through every installed backend
in float32 and float64. Prints, per backend × dtype, the largest ratio seen and its case, and
how many results were agree / inconclusive / disagree. A disagree here would be a false alarm.

    python benchmarks/bound_tightness.py [--cases 40] [--seed 0] [--max-rows 100000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.dtypes import FLOAT32, FLOAT64
from gradcmp.judging.runner import OK, run
from gradcmp.loading import data
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem


def random_case(rng: np.random.Generator, max_rows: int):
    n = int(np.exp(rng.uniform(0, math.log(max_rows))))
    d = int(rng.integers(1, 4))
    x_scale, y_scale = 10.0 ** rng.uniform(-6, 6, size=2)
    X = rng.normal(size=(n, d)) * x_scale
    cancel = rng.random() < 0.5
    theta0 = rng.normal() * y_scale
    theta1 = rng.normal(size=d) * y_scale / x_scale
    if cancel:  # y ≈ θ0 + X·θ1 with tiny noise: residuals cancel to ~1e-7 of the terms
        y = theta0 + X @ theta1 + rng.normal(size=n) * y_scale * 1e-7
    else:
        y = rng.normal(size=n) * y_scale
        theta0, theta1 = theta0 * rng.random(), theta1 * rng.random()
    label = f"n={n} d={d} x~{x_scale:.0e} y~{y_scale:.0e}{' cancel' if cancel else ''}"
    return X, y, {"theta0": np.array(theta0), "theta1": theta1 if d > 1 else theta1[0]}, label


def problem_of(X, y, params) -> Problem:
    dataset = data.Dataset("<random>", tuple(f"x{j}" for j in range(X.shape[1])), "y", X, y)
    model = get_model("linear")
    return Problem(model, dataset, Params.from_arrays(params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rows", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    backends = [b for b in BACKENDS if not missing_modules(BACKENDS[b])]
    worst: dict[tuple[str, str], tuple[float, str, str]] = {}
    counts: dict[tuple[str, str], dict[str, int]] = {}
    start = time.perf_counter()
    for _ in range(args.cases):
        X, y, params, label = random_case(rng, args.max_rows)
        report = run(problem_of(X, y, params), backends, [FLOAT32, FLOAT64])
        for r in report.results:
            key = (r.backend, r.dtype)
            if r.status != OK:
                print(f"{key}: {r.status} {r.note}")
                continue
            counts.setdefault(key, {"agree": 0, "inconclusive": 0, "disagree": 0})
            counts[key][r.verdict] += 1
            name, e = max(r.errors.items(), key=lambda item: item[1].ratio)
            if e.ratio >= worst.get(key, (-1.0, "", ""))[0]:
                worst[key] = (e.ratio, name, label)
    print(f"{args.cases} random cases, seed {args.seed}, {time.perf_counter() - start:.1f} s\n")
    columns = ("agree", "incon", "disagree")
    print(f"{'backend':16} {'dtype':8} {'max ratio':>10}  " + " ".join(columns) + "  worst case")
    for key in sorted(worst):
        ratio, name, label = worst[key]
        c = counts[key]
        print(
            f"{key[0]:16} {key[1]:8} {ratio:10.3g}  {c['agree']:5} {c['inconclusive']:5} "
            f"{c['disagree']:8}  {name}: {label}"
        )


if __name__ == "__main__":
    main()
