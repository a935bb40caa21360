"""Wall time of checking an MLP with about 10⁵ parameters, per backend (and the reference).

    python benchmarks/mlp_large.py [--rows 20] [--hidden 300,300] [--features 10]

Prints one line per backend × dtype: status, verdict, seconds (compile apart for jax-jit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import gradcmp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--hidden", default="300,300")
    parser.add_argument("--backends", default="all")
    args = parser.parse_args()
    hidden = tuple(int(h) for h in args.hidden.split(","))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.rows, args.features))
    y = rng.normal(size=args.rows)
    start = time.perf_counter()
    report = gradcmp.compare(
        (X, y), model="mlp", hidden=hidden, backends=args.backends, dtypes="float32,float64"
    )
    total = time.perf_counter() - start
    count = sum(v.size for v in report.problem.params.values.values())
    print(
        f"MLP {args.features}-{'-'.join(map(str, hidden))}-1: {count} parameters, "
        f"{args.rows} rows; total {total:.1f} s, reference {report.reference.seconds:.1f} s "
        f"({report.reference.name})"
    )
    print(f"{'backend':16} {'dtype':8} {'status':8} {'verdict':12} {'seconds':>9} {'compile':>8}")
    for r in report.results:
        seconds = f"{r.seconds:.3f}" if r.seconds is not None else ""
        compile_s = f"{r.compile_seconds:.3f}" if r.compile_seconds else ""
        print(
            f"{r.backend:16} {r.dtype:8} {r.status:8} {r.verdict or '':12} {seconds:>9} "
            f"{compile_s:>8}"
        )


if __name__ == "__main__":
    main()
