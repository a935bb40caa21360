"""``gradcmp selftest``: plant known bugs into the seed's loss and check the rule catches them.

The planted bugs live here, in one list, so the tests and the command share it. Each is the
seed's loss (``models/linear.py``) with one mistake people make when they port or hand-write
a loss; each runs through the autodiff backends and is held against the exact reference of
the *correct* loss. A bug is caught when the verdict is ``disagree``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from . import data
from .agreement import DISAGREE, INCONCLUSIVE
from .backends import BACKENDS, missing_modules
from .dtypes import DTYPES, FLOAT64
from .errors import BackendError, UsageError
from .models import get_model
from .params import Params
from .problem import Problem
from .runner import OK, Report, run

# Backends that differentiate the loss function itself (native uses a hand-derived gradient,
# which these bugs do not touch).
AUTODIFF_BACKENDS = ("torch-grad", "torch-backward", "jax-grad")


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
    not_autodiff = [b for b in backends or () if b not in AUTODIFF_BACKENDS]
    if not_autodiff:
        raise UsageError(
            f"{', '.join(not_autodiff)} cannot run planted bugs: they are planted in the loss, "
            "which only autodiff backends differentiate",
            hint=f"choose from {', '.join(AUTODIFF_BACKENDS)}",
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
