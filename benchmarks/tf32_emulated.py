"""What gradcmp says of TF32 products, on a CPU: MLPs whose float32 gradient is computed with
every matrix-product operand rounded to TF32 (as a tensor core does), against plain float32.

    python benchmarks/tf32_emulated.py

The emulating backend is the test suite's (tests/test_tf32_disagreement_names_its_fix.py:
``EmulatedGPU``, which reports the device and settings a CUDA run records). The data are the
ones scripts/gpu_check.sh makes (256 rows, 10 features, seed 0), so the GPU run can be held
against these figures. Per MLP and per way of computing: the verdict, the worst err/τ, the
median error in float32 ulps, and whether TF32 is named (in the reason, or in a note).
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CASES = [((300, 300), 256), ((300, 300), 20), ((64,), 256), ((16,), 64)]


def data(rows: int):
    rng = np.random.default_rng(0)  # as scripts/gpu_check.sh
    X = rng.normal(size=(256, 10))
    y = np.tanh(X @ rng.normal(size=10)) + 0.1 * rng.normal(size=256)
    return X[:rows], y[:rows]


def main() -> None:
    from test_tf32_disagreement_names_its_fix import EmulatedGPU

    import gradcmp
    from gradcmp import backends

    ways = {
        "TF32 products": EmulatedGPU("tf32-emulated"),
        "float32": EmulatedGPU("float32-on-gpu", emulate=False),
    }
    for backend in ways.values():
        backends.BACKENDS[backend.name] = backend
    print(
        f"{'MLP':14} {'rows':>5} {'computed with':14} {'verdict':9} {'worst err/τ':>11} "
        f"{'median ulp':>10}  TF32 named"
    )
    for hidden, rows in CASES:
        shape = "-".join(map(str, (10, *hidden, 1)))
        for way, backend in ways.items():
            report = gradcmp.compare(
                data(rows), "mlp", hidden=hidden, backends=[backend.name], dtypes=["float32"]
            )
            r = report.results[0]
            worst = max(e.ratio for e in r.errors.values())
            median = statistics.median(e.ulp for e in r.errors.values())
            named = "reason" if "TF32" in r.why else "note" if "TF32" in r.note else "no"
            print(
                f"{shape:14} {rows:5} {way:14} {r.verdict:9} {worst:11.3g} {median:10.3g}  {named}"
            )


if __name__ == "__main__":
    main()
