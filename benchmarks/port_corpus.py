"""The port-trap corpus (tests/ports/) through gradcmp: per file the exit code, the port
verdict, and where the divergence was located against where the trap is.

    python benchmarks/port_corpus.py [--dtypes float64] [--backends torch-grad,jax-grad]

A trap is "located" when the port's divergence on the trap's side names the marked line; a
kink when the port says "convention" with a kink at the marked line; a twin when the port
is "same" and the run exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from ports.corpus import CORPUS  # noqa: E402

import gradcmp  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtypes", default="float64")
    parser.add_argument("--backends", default="torch-grad,jax-grad")
    args = parser.parse_args()
    header = f"{'file':24} {'side':10} {'line':>4} {'exit':>4} {'port':11} {'located':34} ok"
    print(header)
    print("-" * len(header))
    bad, start = 0, time.perf_counter()
    for e in CORPUS:
        report = gradcmp.compare(
            str(e.data), loss=str(e.file), backends=args.backends, dtypes=args.dtypes
        )
        port = report.port
        if e.kind == "kink":
            hits = [k for k in port.kinks if k.side == e.side and k.line == e.line]
            found = f"{hits[0].op} at {hits[0].line}" if hits else "no kink at the line"
            ok = port.verdict == "convention" and bool(hits)
        elif e.kind == "trap":
            mine = [d for d in port.divergence if d.side == e.side]
            found = f"{mine[0].op} at {mine[0].line}, rel {mine[0].rel:.1e}" if mine else "—"
            ok = port.verdict == "different" and bool(mine) and mine[0].line == e.line
        else:
            found, ok = "—", port.verdict == "same" and report.exit_code == 0
        bad += not ok
        side = e.side.removeprefix("loss_") or "—"
        line = str(e.line or "—")
        print(
            f"{e.file.name:24} {side:10} {line:>4} {report.exit_code:>4} {port.verdict:11} "
            f"{found:34} {'yes' if ok else 'NO'}"
        )
    seconds = time.perf_counter() - start
    print(f"{len(CORPUS)} files, {bad} not as expected, {seconds:.0f} s ({args.dtypes})")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
