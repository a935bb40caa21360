"""``gradcmp selftest``: plant known bugs into the seed's loss and check the rule catches them.

The planted bugs live here, in one list, so the tests and the command share it. Each is the
seed's loss (``models/linear.py``) with one mistake people make when they port or hand-write
a loss; each runs through the autodiff backends and is held against the exact reference of
the *correct* loss. A bug is caught when the verdict is ``disagree``.
"""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from ..backends import BACKENDS, missing_modules
from ..dtypes import DTYPES, FLOAT64
from ..errors import BackendError, UsageError
from ..judging.agreement import DISAGREE, INCONCLUSIVE
from ..judging.runner import OK, Report, run
from ..loading import data
from ..models import get_model
from ..params import Params
from ..problem import Problem

# What runs by default: the seed's autodiff backends (quick).
AUTODIFF_BACKENDS = ("torch-grad", "torch-backward", "jax-grad")
# Every backend that differentiates the loss the bugs are planted in. native and numpy run the
# model's hand-derived gradient, which the bugs do not touch; finite-diff and complex-step
# difference the loss and are judged by their own truncation bound, not by the rule.
DIFFERENTIATING_BACKENDS = (*AUTODIFF_BACKENDS, "torch-func", "jax-jit", "jax-fwd")


def _cast(array, dtype_name: str, xp):
    """``array`` converted to ``dtype_name``: ``.to`` for torch, ``.astype`` for numpy/JAX."""
    dtype = getattr(xp, dtype_name)
    return array.astype(dtype) if hasattr(array, "astype") else array.to(dtype)


def _residual(params, X, y, sign=1):
    return params["theta0"] + sign * (X[:, 0] * params["theta1"]) - y


@dataclass(frozen=True)
class PlantedBug:
    name: str
    description: str
    loss: Callable  # loss(params, X, y, xp), the seed's loss with this bug
    # Dtypes in which the bug changes nothing, so there is nothing to catch.
    no_op_in: tuple[str, ...] = ()


def _clean(params, X, y, xp):
    r = _residual(params, X, y)
    return xp.mean(r * r) / 2


def _missing_half(params, X, y, xp):
    r = _residual(params, X, y)
    return xp.mean(r * r)


def _sum_for_mean(params, X, y, xp):
    r = _residual(params, X, y)
    return xp.sum(r * r) / 2


def _n_minus_1(params, X, y, xp):
    r = _residual(params, X, y)
    return xp.sum(r * r) / (2 * (r.shape[0] - 1))


def _sign_flip(params, X, y, xp):
    r = _residual(params, X, y, sign=-1)
    return xp.mean(r * r) / 2


def _dropped_row(params, X, y, xp):
    r = _residual(params, X, y)[:-1]
    return xp.mean(r * r) / 2


def _float32_downcast(params, X, y, xp):
    r = _cast(_residual(params, X, y), "float32", xp)
    return _cast(xp.mean(r * r) / 2, str(y.dtype).removeprefix("torch."), xp)


CLEAN = PlantedBug("clean", "the seed's loss, mean((θ0 + θ1·x − y)²)/2, no bug", _clean)
PLANTED_BUGS: tuple[PlantedBug, ...] = (
    PlantedBug("missing-half", "mean(r²): the ½ left out", _missing_half),
    PlantedBug("sum-for-mean", "sum(r²)/2: sum where the mean belongs", _sum_for_mean),
    PlantedBug("n-1-divisor", "sum(r²)/(2(n−1)): the sample-variance divisor", _n_minus_1),
    PlantedBug("sign-flip", "θ0 − θ1·x: a sign error in the prediction", _sign_flip),
    PlantedBug("dropped-row", "r[:-1]: an off-by-one drops the last row", _dropped_row),
    PlantedBug(
        "float32-downcast",
        "residuals cast to float32 and back inside a float64 run",
        _float32_downcast,
        no_op_in=("float32",),
    ),
)


@dataclass(frozen=True)
class SelftestResult:
    backends: list[str]
    dtypes: list[str]
    reports: dict[str, Report]  # planted bug name (and "clean") → report

    def outcome(self, bug: PlantedBug, backend: str, dtype: str) -> str:
        """caught | missed | agree | inconclusive | failed | no-op."""
        if dtype in bug.no_op_in:
            return "no-op"
        (r,) = [
            r for r in self.reports[bug.name].results if (r.backend, r.dtype) == (backend, dtype)
        ]
        if r.status != OK:
            return "failed"
        if bug is CLEAN:
            return r.verdict
        return (
            "caught"
            if r.verdict == DISAGREE
            else ("inconclusive" if r.verdict == INCONCLUSIVE else "missed")
        )

    @property
    def passed(self) -> bool:
        """Every planted bug caught in float64 and the clean loss agrees, on every backend."""
        clean = all(
            self.outcome(CLEAN, b, d) == "agree" for b in self.backends for d in self.dtypes
        )
        caught = all(
            self.outcome(bug, b, FLOAT64.name) == "caught"
            for bug in PLANTED_BUGS
            for b in self.backends
        )
        return clean and caught


def seed_problem(loss: Callable) -> Problem:
    """A copy of the seed problem (bundled data, θ = 0) whose loss is ``loss``."""
    model = dataclasses.replace(get_model("linear"), loss=loss)
    dataset = data.load(None)
    return Problem(model, dataset, Params.from_arrays(model.initial_params(dataset)))


def run_selftest(backends: list[str] | None = None) -> SelftestResult:
    refused = [b for b in backends or () if b not in DIFFERENTIATING_BACKENDS]
    if refused:
        raise UsageError(
            f"{', '.join(refused)} cannot run planted bugs: they are planted in the loss, which "
            f"{'it does' if len(refused) == 1 else 'they do'} not differentiate by autodiff",
            hint=f"choose from {', '.join(DIFFERENTIATING_BACKENDS)}",
        )
    if backends is None:
        backends = [b for b in AUTODIFF_BACKENDS if not missing_modules(BACKENDS[b])]
    if not backends:
        raise BackendError(
            "selftest needs torch or jax (none is installed)",
            hint="install gradcmp with the README's install command",
        )
    dtypes = [DTYPES["float32"], FLOAT64]
    reports = {
        bug.name: run(seed_problem(bug.loss), backends, dtypes) for bug in (CLEAN, *PLANTED_BUGS)
    }
    return SelftestResult(backends, [d.name for d in dtypes], reports)


OUTCOME_STYLE = {
    "caught": "green",
    "agree": "green",
    "missed": "bold red",
    "disagree": "bold red",
    "failed": "bold red",
    "inconclusive": "yellow",
    "no-op": "dim",
}


def max_ratio(result: SelftestResult, bug: PlantedBug, backend: str, dtype: str) -> float | None:
    for r in result.reports[bug.name].results:
        if (r.backend, r.dtype) == (backend, dtype) and r.status == OK:
            return max(e.ratio for e in r.errors.values())
    return None


def render(result: SelftestResult, console) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(box=box.SIMPLE_HEAD, title="planted bugs in the seed problem (max ratio)")
    table.add_column("planted bug", no_wrap=True)
    table.add_column("what it does")
    columns = [(b, d) for b in result.backends for d in result.dtypes]
    for backend, dtype in columns:
        table.add_column(f"{backend}\n{dtype}", no_wrap=True)
    for bug in (CLEAN, *PLANTED_BUGS):
        cells = []
        for backend, dtype in columns:
            outcome = result.outcome(bug, backend, dtype)
            ratio = max_ratio(result, bug, backend, dtype)
            if ratio is not None and outcome != "no-op":
                outcome_text = f"{outcome} ({ratio:.2g})"
            else:
                outcome_text = outcome
            cells.append(Text(outcome_text, style=OUTCOME_STYLE.get(outcome, "")))
        table.add_row(bug.name, bug.description, *cells)
    console.print(table)
    if result.passed:
        console.print(
            f"selftest passed: all {len(PLANTED_BUGS)} planted bugs caught in float64 by "
            f"{', '.join(result.backends)}; the clean problem agrees",
            style="green",
            highlight=False,
        )
    else:
        console.print(
            "selftest FAILED: a planted bug was not caught in float64, or the clean problem "
            "does not agree (see the table)",
            style="bold red",
            highlight=False,
        )


# --- Port bugs: the same mistakes planted on one side (loss_torch or loss_jax) of a loss file
# The clean port: the generic spec, the torch original and the JAX port of the seed's loss,
# at θ = (0.5, −1.25) so that no term vanishes. Bugs are planted by replacing one line.
PORT = textwrap.dedent(
    '''
    PARAMS = {"theta0": 0.5, "theta1": -1.25}

    def loss(params, X, y, xp):
        """L = mean((theta0 + theta1·x − y)²) / 2"""
        r = params["theta0"] + params["theta1"] * X[:, 0] - y
        return xp.mean(r * r) / 2

    def loss_torch(params, X, y):
        import torch
        r = params["theta0"] + params["theta1"] * X[:, 0] - y  # TORCH RESIDUAL
        return torch.mean(r ** 2) / 2  # TORCH REDUCTION

    def loss_jax(params, X, y):
        import jax.numpy as jnp
        r = params["theta0"] + params["theta1"] * X[:, 0] - y  # JAX RESIDUAL
        return jnp.mean(r ** 2) / 2  # JAX REDUCTION
    '''
)

# (name, side, the line replaced, its buggy version)
# (name, side, the line replaced, its buggy version)
PORT_BUGS = [
    ("missing-half", "loss_jax", "return jnp.mean(r ** 2) / 2", "return jnp.mean(r ** 2)"),
    (
        "n-1-divisor",
        "loss_jax",
        "return jnp.mean(r ** 2) / 2",
        "return jnp.sum(r ** 2) / (2 * (r.shape[0] - 1))",
    ),
    (
        "dropped-row",
        "loss_torch",
        "return torch.mean(r ** 2) / 2",
        "return torch.mean(r[:-1] ** 2) / 2",
    ),
    (
        "broadcast-(n,1)-(n,)",
        "loss_jax",
        'r = params["theta0"] + params["theta1"] * X[:, 0] - y  # JAX RESIDUAL',
        'r = params["theta0"] + params["theta1"] * X - y  # (n,1) − (n,) is (n,n)',
    ),
    (
        "float32-downcast",
        "loss_torch",
        "return torch.mean(r ** 2) / 2",
        "return (torch.mean(r.float() ** 2) / 2).double()",
    ),
    (
        "sign-error",
        "loss_torch",
        'r = params["theta0"] + params["theta1"] * X[:, 0] - y  # TORCH RESIDUAL',
        'r = params["theta0"] - params["theta1"] * X[:, 0] - y',
    ),
]


@dataclass(frozen=True)
class PortOutcome:
    name: str
    side: str
    exit_code: int
    found: str  # what named the side: "port: line 12 (div)" or "rows: casts to float32"
    on_its_line: bool  # the port's divergence on that side is the planted line (or a row says)
    other_side_agrees: bool

    @property
    def caught(self) -> bool:
        return self.exit_code == 1 and self.on_its_line and self.other_side_agrees


def run_port_selftest(directory) -> tuple[int, list[PortOutcome]]:
    """Plant each port bug into a copy of PORT under ``directory`` and run it in float64.
    Returns the clean file's exit code and one outcome per bug."""
    from pathlib import Path

    from ..api import compare

    def check(name: str, text: str):
        path = Path(directory) / f"{name}.py"
        path.write_text(text)
        return compare(data.bundled_path(), loss=path, dtypes="float64")

    clean = check("clean", PORT).exit_code
    outcomes = []
    for name, side, old, new in PORT_BUGS:
        text = PORT.replace(old, new)
        line = text[: text.index(new)].count("\n") + 1
        report = check(name, text)
        port = report.port
        off = [r for r in report.results if r.status == OK and r.verdict == DISAGREE]
        located = [d for d in port.divergence if d.side == side]
        if port.verdict == "different" and located:
            found = f"port: line {located[0].line} ({located[0].op})"
            on_its_line = located[0].line == line and port.note.startswith(side)
        elif off and all(r.side == side for r in off):  # a row departs from its own graph
            found = f"rows: {off[0].why.split(': ')[-1].split(' at ')[0]}"
            on_its_line = all(f"at {report.problem.model.source}:{line}" in r.why for r in off)
        else:
            found, on_its_line = f"port {port.verdict}", False
        other = "loss_torch" if side == "loss_jax" else "loss_jax"
        other_agrees = all(
            r.verdict != DISAGREE for r in report.results if r.status == OK and r.side == other
        )
        outcomes.append(PortOutcome(name, side, report.exit_code, found, on_its_line, other_agrees))
    return clean, outcomes


def render_ports(clean: int, outcomes: list[PortOutcome], console) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD, title="port bugs planted on one side of a loss file (float64)"
    )
    for column in ("planted bug", "on", "exit", "located by", "other side", "caught"):
        table.add_column(column, no_wrap=column != "located by")
    table.add_row("clean", "—", str(clean), "—", "agrees", Text("—"))
    for o in outcomes:
        table.add_row(
            o.name,
            o.side,
            str(o.exit_code),
            o.found,
            "agrees" if o.other_side_agrees else "DISAGREES",
            Text("caught" if o.caught else "MISSED", style="green" if o.caught else "bold red"),
        )
    console.print(table)
