"""Peak memory of ``gradcmp run`` with every backend on a large dataset, against the dataset's
bytes in the chosen dtype (target: ≤ 3 ×).

    python benchmarks/memory.py                     # 10 M rows, float32, -b all
    python benchmarks/memory.py --rows 1e6 --dtype float64

The run's memory is sampled every 20 ms as the sum of the proportional set size (PSS, from
/proc/PID/smaps_rollup: pages shared between processes counted once, split between them) of
gradcmp and its worker processes. The same command on 1,000 rows gives the floor (Python,
numpy, torch and jax themselves); what the large dataset adds is peak − floor. Both with the
framework backends in worker processes (the default) and in one process (--no-workers).
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def make_npy(rows: int, directory: Path) -> Path:
    path = directory / f"memory-{rows}.npy"
    if not path.exists():
        rng = np.random.default_rng(0)
        x = rng.standard_normal(rows)
        np.save(path, np.column_stack([x, 3 * x + rng.standard_normal(rows)]))
    return path


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except OSError:
            continue
    return found


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def peak_memory(command: list[str]) -> tuple[int, float, int]:
    """(peak summed PSS in bytes, wall seconds, exit code) of ``command`` and its children."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_pss(p) for p in _descendants(process.pid)))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    done.set()
    sampler.join()
    if process.returncode not in (0, 1):
        print(stderr.decode(errors="replace"), file=sys.stderr)
    return peak, time.perf_counter() - start, process.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=float, default=1e7)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("-b", "--backends", default="all")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "gradcmp-bench")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    rows = int(args.rows)
    big, small = make_npy(rows, args.dir), make_npy(1000, args.dir)
    gradcmp = [sys.executable, "-m", "gradcmp", "run", "-b", args.backends, "--dtype", args.dtype]
    itemsize = np.dtype(args.dtype).itemsize if args.dtype != "bfloat16" else 2
    data_bytes = rows * 2 * itemsize
    results = []
    for workers in ("--workers", "--no-workers"):
        floor, _, _ = peak_memory([*gradcmp, "--data", str(small), workers])
        peak, wall, code = peak_memory([*gradcmp, "--data", str(big), workers])
        results.append(
            {
                "mode": workers,
                "floor_bytes": floor,
                "peak_bytes": peak,
                "added_bytes": peak - floor,
                "data_bytes": data_bytes,
                "ratio": (peak - floor) / data_bytes,
                "wall_seconds": wall,
                "exit_code": code,
            }
        )
    if args.format == "json":
        print(json.dumps({"rows": rows, "dtype": args.dtype, "results": results}, indent=2))
        return
    print(
        f"gradcmp run -b {args.backends} --dtype {args.dtype}, {rows:,} rows × 2 columns "
        f"(.npy, float64): data in {args.dtype} = {data_bytes / 2**20:.0f} MB"
    )
    print(f"{'mode':14} {'floor MB':>9} {'peak MB':>9} {'added MB':>9} {'× data':>7} {'wall s':>7}")
    for r in results:
        print(
            f"{r['mode']:14} {r['floor_bytes'] / 2**20:9.0f} {r['peak_bytes'] / 2**20:9.0f} "
            f"{r['added_bytes'] / 2**20:9.0f} {r['ratio']:7.2f} {r['wall_seconds']:7.1f}"
        )
    print("target: added ≤ 3 × data")


if __name__ == "__main__":
    main()
