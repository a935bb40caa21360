"""Op coverage of the shadow evaluation: the primitives / ATen ops each tracer evaluates, and
which of the port corpus' files (tests/ports/) and examples need them.

    python benchmarks/op_coverage.py            # Markdown tables on stdout

Traces every file of the corpus and the transformer example, both sides, at their data, and
lists the ops their graphs hold (forward and backward). Ops with a rule that no file needs
are listed apart.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ports.corpus import CORPUS  # noqa: E402
from shadow_eval import problem_for  # noqa: E402

from gradcmp.reference import jax_rules, torch_rules  # noqa: E402
from gradcmp.reference.trace_jax import shadow_jax  # noqa: E402
from gradcmp.reference.trace_torch import shadow_torch  # noqa: E402

TRANSFORMER = ROOT / "examples" / "transformer_block" / "loss.py"


def _base(op: str) -> str:
    """aten.add.Tensor → add.Tensor; aten.max.dim[0] → max.dim; a jax primitive as it is."""
    return op.removeprefix("aten.").split("[")[0]


def main() -> None:
    used: dict[tuple[str, str], set[str]] = defaultdict(set)
    files = [(e.name + "_" + e.kind, e.file, e.data) for e in CORPUS]
    files.append(("transformer_block", TRANSFORMER, TRANSFORMER.parent / "data.csv"))
    for label, path, data in files:
        problem = problem_for(path, data)
        X, y = problem.data.X, problem.data.y
        params = {k: np.asarray(v, dtype=np.float64) for k, v in problem.params.values.items()}
        for framework, shadow in (("jax", shadow_jax), ("torch", shadow_torch)):
            loss = problem.model.framework_losses[framework]
            graph = shadow(loss, params, X, y, user_file=str(path))
            for step in graph.steps:
                if step.phase != "input":
                    used[(framework, _base(step.op))].add(label.removesuffix("_twin"))
    print("| framework | op | used by |")
    print("|---|---|---|")
    for (framework, op), users in sorted(used.items()):
        names = sorted(users)
        shown = ", ".join(names[:6]) + (f", … ({len(names)} files)" if len(names) > 6 else "")
        print(f"| {framework} | `{op}` | {shown} |")
    ruled = {("jax", k) for k in jax_rules.RULES} | {("jax", k) for k in jax_rules.PLAIN}
    ruled |= {("torch", _base(k)) for k in torch_rules.RULES}
    unused = sorted(ruled - set(used))
    print()
    for framework in ("jax", "torch"):
        ops = [op for f, op in unused if f == framework]
        print(
            f"{framework}: {len(ops)} more ops with a rule that no file here needs: "
            + ", ".join(f"`{op}`" for op in ops)
        )


if __name__ == "__main__":
    main()
