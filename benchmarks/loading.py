"""Loading a large CSV: gradcmp's strict reader beside the fastest readers at hand, on the
same file, measured side by side (rounds interleave the readers, so machine load hits all).

    python benchmarks/loading.py                   # 10 M rows × 2 columns (≈390 MB), 5 rounds
    python benchmarks/loading.py --rows 1e6 --python   # also the pure-Python reader

The file holds what ``repr`` writes for random normal floats (17 significant digits: every
cell is a decimal float64 must round, so gradcmp also keeps each one's exact value for the
reference). Readers: gradcmp (``gradcmp.loading.data.load``: strict rules, correctly rounded values,
exact decimals kept; C reader), pandas' C reader (``pd.read_csv``, default options),
pyarrow (``pyarrow.csv.read_csv``), and gradcmp on the same data as ``.npy`` (memory-mapped).
The target: gradcmp ≤ 1.2 × the fastest other reader. Each read runs in a fresh process
(what a gradcmp run does; the time printed is the read alone, imports apart).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcmp.loading import data  # noqa: E402  (to say whether the C reader is built)


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


# Each read runs in a fresh process, as a gradcmp run does: a process that read the file
# before would reuse its memory and read faster than any real run. The time is the read
# alone (imports apart), printed by the child.
READERS = {
    "gradcmp (csv)": "from gradcmp import data; read = lambda: data.load(CSV)",
    "pandas read_csv (C)": "import pandas as pd; read = lambda: pd.read_csv(CSV)",
    "pyarrow read_csv": "import pyarrow.csv as c; read = lambda: c.read_csv(CSV)",
    "gradcmp (.npy, mmap)": "from gradcmp import data; read = lambda: data.load(NPY)",
    "gradcmp (csv, Python reader)": (
        "from gradcmp import data; "
        "read = lambda: data._load_csv_python(CSV.read_bytes(), 'y', str(CSV))"
    ),
}
CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
CSV, NPY = Path({csv!r}), Path({npy!r})
{setup}
start = time.perf_counter()
read()
print(time.perf_counter() - start)
"""


def available(with_python: bool) -> list[str]:
    import importlib.util

    names = ["gradcmp (csv)"]
    for name, module in (("pandas read_csv (C)", "pandas"), ("pyarrow read_csv", "pyarrow")):
        if importlib.util.find_spec(module):
            names.append(name)
        else:
            print(f"{module} not installed: pip install {module} to measure it", file=sys.stderr)
    names.append("gradcmp (.npy, mmap)")
    if with_python:
        names.append("gradcmp (csv, Python reader)")
    return names


def read_once(name: str, csv_path: Path, npy_path: Path) -> float:
    root = str(Path(__file__).resolve().parents[1])
    code = CHILD.format(root=root, csv=str(csv_path), npy=str(npy_path), setup=READERS[name])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


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
    found = available(args.python)
    times: dict[str, list[float]] = {name: [] for name in found}
    for name in found:  # one untimed read each: the files are in the page cache for all
        read_once(name, csv_path, npy_path)
    for round_number in range(args.repeat):
        names = found[round_number % len(found) :] + found[: round_number % len(found)]
        for name in names:
            times[name].append(read_once(name, csv_path, npy_path))
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
