"""The exact reference of data split into partitions, as ``python -m gradcmp.dist`` computes
it: each rank the reference of its own rows (weighted by its share), rank 0 adds the parts
exactly. Against the reference of all rows in one process.

    python benchmarks/partitioned_reference.py [--rows 100000] [--parts 4] [--repeat 3]

Prints medians over ``--repeat`` runs (interleaved) of: the whole reference in one process; every
part one after another (what one machine would pay); the largest part (what the slowest rank
pays when ranks run side by side); the exact addition of the parts at rank 0. And checks that
the added reference equals the whole one exactly (linear model: exact rationals).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from fractions import Fraction

import numpy as np

from gradcmp.distributed.partial_reference import combined, partial
from gradcmp.distributed.shards import Shards
from gradcmp.dtypes import DTYPES
from gradcmp.loading import data
from gradcmp.loading.partitions import rows_of
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem
from gradcmp.reference.compute import compute_reference


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, 4))
    y = X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.normal(size=args.rows)
    dataset = data.from_arrays(X, y)
    model = get_model("linear")
    params = Params.from_arrays(model.initial_params(dataset))
    dtypes = [DTYPES["float64"], DTYPES["float32"]]
    shards = Shards.split(args.rows, args.parts)
    timings: dict[str, list[float]] = {"whole": [], "parts": [], "largest": [], "add": []}
    for _ in range(args.repeat):
        began = time.perf_counter()
        whole = compute_reference(Problem(model, dataset, params), dtypes)
        timings["whole"].append(time.perf_counter() - began)
        pieces, each = [], []
        for rank, (start, stop) in enumerate(shards.bounds):
            began = time.perf_counter()
            local = Problem(model, rows_of(dataset, start, stop), params)
            w = Fraction(stop - start, args.rows)
            pieces.append(partial(compute_reference(local, dtypes), w, local, rank == 0))
            each.append(time.perf_counter() - began)
        timings["parts"].append(sum(each))
        timings["largest"].append(max(each))
        began = time.perf_counter()
        added = combined(pieces)
        timings["add"].append(time.perf_counter() - began)
    equal = all(
        added.by_dtype[d.name].outputs() == whole.by_dtype[d.name].outputs() for d in dtypes
    )
    print(f"{args.rows} rows × 4 features, linear model, float64 + float32 references, "
          f"{args.parts} parts; {platform.processor() or platform.machine()}, "
          f"medians of {args.repeat}")
    for name, label in (("whole", "whole data, one process"),
                        ("parts", "every part, one after another"),
                        ("largest", "largest part (slowest rank)"),
                        ("add", "exact addition at rank 0")):
        median = statistics.median(timings[name])
        ratio = median / statistics.median(timings["whole"])
        print(f"  {label:32} {median:8.3f} s   ×{ratio:.2f}")
    print(f"  added reference equals the whole one exactly: {'yes' if equal else 'NO'}")


if __name__ == "__main__":
    main()
