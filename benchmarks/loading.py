"""Loading a large CSV: gradcmp's strict reader beside the fastest readers at hand, on the
same file, measured side by side (rounds interleave the readers, so machine load hits all).

    python benchmarks/loading.py                   # 10 M rows × 2 columns (≈390 MB), 5 rounds
    python benchmarks/loading.py --rows 1e6 --python   # also the pure-Python reader

The file holds what ``repr`` writes for random normal floats (17 significant digits: every
cell is a decimal float64 must round, so gradcmp also keeps each one's exact value for the
reference). Readers: gradcmp (``gradcmp.data.load``: strict rules, correctly rounded values,
exact decimals kept; C reader), pandas' C reader (``pd.read_csv``, default options),
pyarrow (``pyarrow.csv.read_csv``), and gradcmp on the same data as ``.npy`` (memory-mapped).
The target: gradcmp ≤ 1.2 × the fastest other reader.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcmp import data  # noqa: E402


def make_files(rows: int, directory: Path) -> tuple[Path, Path]:
    csv_path, npy_path = directory / f"big-{rows}.csv", directory / f"big-{rows}.npy"
    if not csv_path.exists():
        rng = np.random.default_rng(0)
        x = rng.standard_normal(rows)
        y = 3 * x + rng.standard_normal(rows)
        temporary = csv_path.with_suffix(".tmp")
        with open(temporary, "w") as f:
            f.write("x,y\n")
            step = 1_000_000
            for i in range(0, rows, step):
                xs, ys = x[i : i + step].tolist(), y[i : i + step].tolist()
                f.write("".join(f"{a!r},{b!r}\n" for a, b in zip(xs, ys)))
        temporary.rename(csv_path)
        np.save(npy_path, np.column_stack([x, y]))
    return csv_path, npy_path


def readers(csv_path: Path, npy_path: Path, with_python: bool) -> dict:
    found = {"gradcmp (csv)": lambda: data.load(csv_path)}
    try:
        import pandas as pd

        found["pandas read_csv (C)"] = lambda: pd.read_csv(csv_path)
    except ImportError:
        print("pandas not installed: pip install pandas to measure it", file=sys.stderr)
    try:
        import pyarrow.csv as pacsv

        found["pyarrow read_csv"] = lambda: pacsv.read_csv(csv_path)
    except ImportError:
        print("pyarrow not installed", file=sys.stderr)
    found["gradcmp (.npy, mmap)"] = lambda: data.load(npy_path)
    if with_python:
        found["gradcmp (csv, Python reader)"] = lambda: data._load_csv_python(
            csv_path.read_bytes(), "y", str(csv_path)
        )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--python", action="store_true", help="also the pure-Python reader")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "gradcmp-bench")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    csv_path, npy_path = make_files(int(args.rows), args.dir)
    print(
        f"{int(args.rows):,} rows, {csv_path.stat().st_size / 1e6:.0f} MB CSV; "
        f"{len(os.sched_getaffinity(0))} CPUs; C reader: {data._fastcsv is not None}; "
        f"{args.repeat} rounds, readers interleaved"
    )
    found = readers(csv_path, npy_path, args.python)
    times: dict[str, list[float]] = {name: [] for name in found}
    for read in found.values():  # one untimed read each: the page cache is warm for all
        read()
    for round_number in range(args.repeat):
        names = list(found)
        names = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in names:
            start = time.perf_counter()
            result = found[name]()
            times[name].append(time.perf_counter() - start)
            del result
    others = [n for n in found if not n.startswith("gradcmp")]
    fastest = min(others, key=lambda n: statistics.median(times[n])) if others else None
    print(f"\n{'reader':32} {'median s':>9} {'min s':>7} {'max s':>7} {'ratio':>7}")
    for name, values in times.items():
        ratio = (
            f"{statistics.median(values) / statistics.median(times[fastest]):.2f}"
            if fastest
            else ""
        )
        print(
            f"{name:32} {statistics.median(values):9.3f} {min(values):7.3f} "
            f"{max(values):7.3f} {ratio:>7}"
        )
    if fastest:
        ratio = statistics.median(times["gradcmp (csv)"]) / statistics.median(times[fastest])
        verdict = "met" if ratio <= 1.2 else "NOT met"
        print(f"\ntarget gradcmp (csv) ≤ 1.2 × {fastest}: {ratio:.2f} × — {verdict}")


if __name__ == "__main__":
    main()
