"""``gradcmp selftest --distributed``: plant the bugs people write into distributed gradient
steps and check that gradcmp catches each one, and that the clean set-ups agree.

Each planted bug is a small loss file in ``gradcmp/data/distributed/`` (its docstring's first
line says what it plants): the seed's linear regression on the bundled data, with a
``grad_torch_dist`` or ``grad_jax_dist`` step that has one mistake in it. Each runs through
the library (``api.compare``) as one world on its own side's backend, both dtypes in that
world, and is held against the exact full-batch reference of the correct loss. A bug is caught
when float64 says ``disagree`` (exit 1). The clean file runs on every engine — torch-ddp,
torch-fsdp, jax-sharded, jax-shardmap — and through its own two steps, and must agree in every
dtype (exit 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path

from ..dtypes import FLOAT64
from ..errors import BackendError, UsageError
from ..judging.agreement import AGREE, DISAGREE, INCONCLUSIVE
from ..judging.runner import OK, Report, Result

CAUGHT = "caught"
PLANTED_DIR = ("data", "distributed")
DEFAULT_DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Case:
    name: str
    file: str  # in gradcmp/data/distributed/
    side: str  # the loss file's step that runs, or "—" for an engine on the loss itself
    backend: str
    expected: str  # CAUGHT for a planted bug, AGREE for a clean set-up


TORCH, JAX = "grad_torch_dist", "grad_jax_dist"
PLANTED: tuple[Case, ...] = (
    Case("mean-of-means", "mean_of_means.py", TORCH, "torch-dist:4", CAUGHT),
    Case("sampler-padding", "sampler_padding.py", TORCH, "torch-dist:4", CAUGHT),
    Case("summed-not-averaged", "summed.py", TORCH, "torch-dist:2", CAUGHT),
    Case("accumulation-no-÷k", "accumulation.py", TORCH, "torch-dist:2", CAUGHT),
    Case("skipped-parameter", "skipped_parameter.py", TORCH, "torch-dist:2", CAUGHT),
    Case("extra-psum", "extra_psum.py", JAX, "jax-dist:4", CAUGHT),
    Case("pmean-over-padding", "pmean_padded.py", JAX, "jax-dist:4", CAUGHT),
    Case("empty-device-mean", "empty_device_mean.py", JAX, "jax-dist:8", CAUGHT),
)
CLEAN_FILE = "clean.py"
CLEAN: tuple[Case, ...] = tuple(
    Case("clean", CLEAN_FILE, side, backend, AGREE)
    for side, backend in (
        ("—", "torch-ddp:4"),
        ("—", "torch-fsdp:4"),
        ("—", "jax-sharded:4"),
        ("—", "jax-shardmap:4"),
        (TORCH, "torch-dist:4"),
        (JAX, "jax-dist:4"),
    )
)


def planted_path(file: str) -> Path:
    """The planted loss file shipped inside the package."""
    return Path(str(resources.files("gradcmp").joinpath(*PLANTED_DIR, file)))


def what_it_plants(case: Case) -> str:
    """The planted file's docstring's first line, less its "Plants"/"Clean:"; an engine runs
    the clean file's loss itself."""
    import ast

    if case.side == "—":
        return "the clean loss; the engine shards the rows and reduces"
    text = planted_path(case.file).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text)) or ""
    line = doc.splitlines()[0] if doc else ""
    for prefix in ("Plants ", "Clean: "):
        line = line.removeprefix(prefix)
    return line.removesuffix(".")


@dataclass(frozen=True)
class Row:
    case: Case
    got: str  # caught | missed | inconclusive | agree | disagree | failed
    exit_code: int
    ratios: dict[str, float | None]  # dtype → computed/true of the worst gradient element
    note: str = ""  # why, where the outcome is not the expected one

    @property
    def passed(self) -> bool:
        wanted_exit = 1 if self.case.expected == CAUGHT else 0
        return self.got == self.case.expected and self.exit_code == wanted_exit


@dataclass(frozen=True)
class DistributedSelftest:
    dtypes: list[str]
    rows: list[Row]

    @property
    def passed(self) -> bool:
        """Every planted bug caught in float64 (exit 1), every clean set-up agrees (exit 0)."""
        return all(row.passed for row in self.rows)


def worst_ratio(report: Report, result: Result) -> float | None:
    """computed / true for the gradient element the rule judges worst, rank 0's value as the
    report shows it (None: no result, or the true value is 0)."""
    if result.status != OK or not result.grads:
        return None
    name = max(
        result.grads,
        key=lambda k: (not math.isfinite(result.errors[k].abs), result.errors[k].ratio),
    )
    value = result.grads[name]
    truth = report.reference.for_side(result.side, result.dtype)[1].grads[name]
    if not math.isfinite(value):
        return math.nan
    if truth == 0:
        return None
    return float(Fraction(value) / truth)


def _row(case: Case, report: Report, dtypes: Sequence[str]) -> Row:
    mine = {r.dtype: r for r in report.results if r.backend == case.backend}
    ratios = {d: worst_ratio(report, mine[d]) if d in mine else None for d in dtypes}
    failed = [r for r in mine.values() if r.status != OK]
    if failed or not mine:
        note = failed[0].note if failed else "no result"
        return Row(case, "failed", report.exit_code, ratios, note)
    if case.expected == CAUGHT:
        r = mine[FLOAT64.name]
        got = {DISAGREE: CAUGHT, INCONCLUSIVE: INCONCLUSIVE}.get(r.verdict, "missed")
        return Row(case, got, report.exit_code, ratios, "" if got == CAUGHT else r.why)
    off = [r for r in mine.values() if r.verdict != AGREE]
    got = off[0].verdict if off else AGREE
    note = f"{off[0].dtype}: {off[0].why}" if off else ""
    return Row(case, got, report.exit_code, ratios, note)


def run_distributed_selftest(
    dtypes: Sequence[str] = DEFAULT_DTYPES,
    timeout: float | None = 300.0,
    progress: Callable[[str], None] | None = None,
) -> DistributedSelftest:
    """Run every planted bug (one world each) and the clean file on every engine (one report,
    one world per engine), each through ``api.compare`` on the bundled data."""
    from ..api import compare
    from ..backends import BACKENDS, missing_modules
    from ..loading import data

    if FLOAT64.name not in dtypes:
        raise UsageError(
            f"selftest --distributed judges the planted bugs in float64, not in {', '.join(dtypes)}"
        )
    cases = (*PLANTED, *CLEAN)
    missing = sorted({m for c in cases for m in missing_modules(BACKENDS[c.backend])})
    if missing:
        raise BackendError(
            f"selftest --distributed needs torch and jax ({', '.join(missing)} not installed)",
            hint="install gradcmp with the README's install command",
        )
    bundled = data.bundled_path()

    def report_for(file: str, backends: list[str]) -> Report:
        if progress is not None:
            progress(f"{file}: {', '.join(backends)}")
        return compare(
            bundled,
            loss=planted_path(file),
            backends=backends,
            dtypes=list(dtypes),
            timeout=timeout,
        )

    rows = [_row(case, report_for(case.file, [case.backend]), dtypes) for case in PLANTED]
    clean = report_for(CLEAN_FILE, [c.backend for c in CLEAN])
    rows += [_row(case, clean, dtypes) for case in CLEAN]
    return DistributedSelftest(list(dtypes), rows)


def ratio_text(ratio: float | None) -> str:
    """``×2.0``, ``×0.75``, ``×NaN``; ``—`` where there is none."""
    if ratio is None:
        return "—"
    if math.isnan(ratio):
        return "×NaN"
    text = f"{ratio:.3g}"
    return f"×{text}.0" if text.lstrip("-").isdigit() else f"×{text}"


STYLE = {CAUGHT: "green", AGREE: "green", INCONCLUSIVE: "yellow"}


def render(result: DistributedSelftest, console) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD,
        title="distributed steps, planted bugs and clean set-ups "
        "(bundled data; got: float64; ×: computed/true of the worst gradient element)",
    )
    table.add_column("planted bug", no_wrap=True)
    table.add_column("what it plants")
    for column in ("side", "backend", "expected", "got", "exit"):
        table.add_column(column, no_wrap=True)
    for dtype in DEFAULT_DTYPES:
        table.add_column(dtype, no_wrap=True, justify="right")
    for row in result.rows:
        c = row.case
        got = Text(row.got, style=STYLE.get(row.got, "bold red") if row.passed else "bold red")
        ratios = [ratio_text(row.ratios.get(d)) for d in DEFAULT_DTYPES]
        table.add_row(
            c.name,
            what_it_plants(c),
            c.side,
            c.backend,
            c.expected,
            got,
            str(row.exit_code),
            *ratios,
        )
    console.print(table)
    for row in result.rows:
        if not row.passed:
            console.print(
                f"{row.case.name} on {row.case.backend}: expected {row.case.expected}, got "
                f"{row.got} (exit {row.exit_code}){': ' + row.note if row.note else ''}",
                style="bold red",
                highlight=False,
            )
    planted = sum(1 for r in result.rows if r.case.expected == CAUGHT)
    if result.passed:
        console.print(
            f"selftest --distributed passed: all {planted} planted bugs caught in float64; "
            f"the clean file agrees on all {len(result.rows) - planted} set-ups",
            style="green",
            highlight=False,
        )
    else:
        console.print(
            "selftest --distributed FAILED: a planted bug was not caught, or a clean set-up "
            "does not agree (see above)",
            style="bold red",
            highlight=False,
        )
