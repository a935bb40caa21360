"""Autodiff over row blocks, for data larger than a memory budget.

Autodiff keeps the forward pass's intermediates for the backward pass, each as large as the
data (torch 1.5–2 ×, eager JAX 3.5–4 × the inputs at 10⁷ rows). Where the inputs in a dtype
exceed ``budget()`` bytes, an autodiff backend computes the loss and gradient on contiguous
blocks of rows (a quarter of the budget each), one after another, and adds the blocks'
results exactly: the loss of every built-in model is a mean over rows, so
L = Σ_k (n_k/n)·L_k, value and gradient
(``distributed/shards.py`` says the same of ranks). Each block's results are the backend's
own, in its dtype; the weighted sum is formed in integers, exactly, and rounded once to the
dtype (through float64: a second rounding of at most 2⁻⁵³ relative).

Why the agreement rule still holds: its bound γ_{n−1+c}(u)·M + W·η covers any order of the
sum over rows (agreement.py). A block of b_k rows errs by at most γ_{b_k−1+c}(u)·M_k, the
exact weighted sum of the blocks by at most γ_{b−1+c}(u)·M with b the longest block, and the
final rounding adds u·(1 + 2⁻²⁹)·|L| ≤ u·M; γ_{b−1+c} + u·(1 + γ) ≤ γ_{b+c} ≤ γ_{n−1+c}
since every block is at least 64 rows shorter than n.

Only the built-in models are blocked (their losses are means over rows by construction); a
loss file's loss may be anything (a batch statistic), and runs whole.
"""

from __future__ import annotations

import dataclasses
import os
import time
from fractions import Fraction

import numpy as np

from ..dtypes import DType
from ..problem import Problem
from .base import Output

# The inputs' bytes (X and y in the dtype) above which autodiff runs on blocks of
# ``BLOCK_BYTES / 4`` each (the intermediates of a block, not of the whole, held at once);
# ``GRADCMP_BLOCK_BYTES`` overrides it (0: never in blocks).
BLOCK_BYTES = 16 * 2**20
# Block lengths are multiples of this many rows: every block starts 64-byte aligned, which
# lets JAX use it in place (backends/_jax.py).
ALIGN_ROWS = 64


def budget() -> int:
    given = os.environ.get("GRADCMP_BLOCK_BYTES", "").strip()
    return int(given) if given else BLOCK_BYTES


def row_blocks(problem: Problem, dtype: DType) -> list[tuple[int, int]] | None:
    """[start, stop) of each block, or None where the call runs on the whole data."""
    limit = budget()
    if limit <= 0 or problem.model.source != "built-in":
        return None
    X, y = problem.inputs(dtype)
    size, rows = X.nbytes + y.nbytes, len(y)
    if size <= limit or rows < 2 * ALIGN_ROWS:
        return None
    length = max(ALIGN_ROWS, limit * rows // (4 * size) // ALIGN_ROWS * ALIGN_ROWS)
    if length >= rows - ALIGN_ROWS:  # one block would be nearly all: not worth it
        return None
    return [(start, min(start + length, rows)) for start in range(0, rows, length)]


def block_of(problem: Problem, dtype: DType, start: int, stop: int) -> Problem:
    """The problem on rows [start, stop): its inputs views of the whole's (no copy)."""
    X, y = problem.inputs(dtype)
    data = problem.data
    part = dataclasses.replace(
        data, X=data.X[start:stop], y=data.y[start:stop], decimal_cells={}, decimals=None
    )
    inputs = {dtype.name: (X[start:stop], y[start:stop])}
    return Problem(problem.model, part, problem.params, inputs)


def in_blocks(compute, problem: Problem, dtype: DType) -> Output | None:
    """``compute(problem, dtype)`` over row blocks, the results added exactly; None where the
    data is within the budget (the caller computes on the whole)."""
    blocks = row_blocks(problem, dtype)
    if blocks is None:
        return None
    rows = problem.data.rows
    outputs, compile_seconds, run_seconds = [], None, None
    for start, stop in blocks:
        begun = time.perf_counter()
        output = compute(block_of(problem, dtype, start, stop), dtype)
        outputs.append(output)
        if output.compile_seconds is not None:
            compile_seconds = (compile_seconds or 0.0) + output.compile_seconds
            run_seconds = (run_seconds or 0.0) + (
                output.run_seconds
                if output.run_seconds is not None
                else time.perf_counter() - begun
            )
    weights = [stop - start for start, stop in blocks]
    loss = weighted_sum([np.asarray(o.loss) for o in outputs], weights, rows, dtype)
    grads = {
        name: weighted_sum([np.asarray(o.grads[name]) for o in outputs], weights, rows, dtype)
        for name in outputs[0].grads
    }
    longest = max(weights)
    note = f"computed in {len(blocks)} row blocks of ≤ {longest} rows (memory), added exactly"
    notes = tuple(dict.fromkeys((*outputs[0].notes, note)))
    return Output(
        loss,
        grads,
        notes=notes,
        side=outputs[0].side,
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
    )


def weighted_sum(values: list[np.ndarray], weights: list[int], total: int, dtype: DType):
    """Σ_k (weights[k] / total)·values[k], element by element, exactly, rounded once to
    float64 (a correctly rounded integer division) and then to ``dtype``."""
    shape = values[0].shape
    wide = [np.asarray(v, dtype=np.float64).ravel() for v in values]
    out = np.empty(wide[0].size, dtype=np.float64)
    for i in range(out.size):
        if not all(np.isfinite(v[i]) for v in wide):  # a NaN or inf stays one
            out[i] = sum(float(v[i]) * w for v, w in zip(wide, weights)) / total
            continue
        exact = sum((Fraction(float(v[i])) * w for v, w in zip(wide, weights)), Fraction(0))
        exact /= total
        out[i] = exact.numerator / exact.denominator
    with np.errstate(over="ignore"):
        return out.reshape(shape).astype(dtype.numpy_dtype)
