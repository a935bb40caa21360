"""``--save-baseline`` / ``--baseline``: what changed since a saved run (e.g. a torch upgrade).

A baseline is a JSON report. A later run of the same problem (model, data, parameters) is
compared with it per backend × dtype: ``same`` (every number bit for bit), ``changed`` (numbers
moved but both runs agree with the reference: rounding changed, nothing broke), ``regressed``
(agreed before, not now), ``improved`` (the reverse), ``new`` or ``gone``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..dtypes import DTYPES
from ..errors import InputError
from .agreement import AGREE
from .runner import OK, Report

SAME, CHANGED, REGRESSED, IMPROVED, NEW, GONE = (
    "same",
    "changed",
    "regressed",
    "improved",
    "new",
    "gone",
)


@dataclass(frozen=True)
class Change:
    backend: str
    dtype: str
    status: str
    was: str | None  # verdict (or status) in the baseline
    now: str | None
    moved_ulp: float  # largest move of one output, in ULPs of the dtype (0 when same)
    detail: str


@dataclass(frozen=True)
class BaselineComparison:
    path: str
    changes: list[Change]

    @property
    def verdict(self) -> str:
        statuses = {c.status for c in self.changes}
        for status in (REGRESSED, CHANGED, IMPROVED, NEW, GONE):
            if status in statuses:
                return status
        return SAME

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "verdict": self.verdict,
            "changes": [c.__dict__ for c in self.changes],
        }


def load(path: str) -> dict:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", where=path, hint="check the --baseline path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", where=path) from None
    try:
        saved = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"not JSON: {exc.msg}",
            where=f"{path}:{exc.lineno}",
            hint="give a report written by --save-baseline or --format json",
        ) from None
    entry_keys = {"backend", "dtype", "status", "loss", "grads", "verdict"}
    if (
        not isinstance(saved, dict)
        or not isinstance(saved.get("results"), list)
        or not all(isinstance(r, dict) and entry_keys <= set(r) for r in saved["results"])
        or not all(isinstance(r["grads"], dict) for r in saved["results"])
    ):
        raise InputError(
            "not a gradcmp JSON report (no results)",
            where=path,
            hint="give a report written by --save-baseline or --format json",
        )
    if saved.get("detail", "full") != "full":
        raise InputError(
            "a --json-detail summary report cannot be a baseline (it lacks most values)",
            where=path,
            hint="save baselines with --save-baseline",
        )
    return saved


def compare_with(report: Report, saved: dict, path: str) -> BaselineComparison:
    from ..report.json import to_dict

    current = to_dict(report)
    for key in ("model", "params"):
        if saved.get(key) != current[key]:
            raise InputError(
                f"the baseline is for another problem (not the same {key})",
                where=path,
                hint="compare runs of the same model, data and parameters",
            )
    same_data = {k: saved.get("data", {}).get(k) for k in ("rows", "sha256")}
    if same_data != {k: current["data"][k] for k in ("rows", "sha256")}:
        raise InputError(
            "the baseline is for other data (rows or contents differ)",
            where=path,
            hint="compare runs of the same model, data and parameters",
        )
    old = {(r["backend"], r["dtype"]): r for r in saved["results"]}
    new = {(r["backend"], r["dtype"]): r for r in current["results"]}
    changes = [_change(key, old.get(key), new.get(key)) for key in dict.fromkeys([*old, *new])]
    return BaselineComparison(path, changes)


def _state(r: dict) -> str:
    return r["verdict"] if r["status"] == OK else r["status"]


def _change(key: tuple[str, str], old: dict | None, new: dict | None) -> Change:
    backend, dtype = key
    if old is None or new is None:
        status = NEW if old is None else GONE
        return Change(backend, dtype, status, old and _state(old), new and _state(new), 0.0, "")
    was, now = _state(old), _state(new)
    if was == AGREE and now != AGREE:
        status = REGRESSED
    elif was != AGREE and now == AGREE:
        status = IMPROVED
    else:
        status = SAME
    moved, detail = 0.0, ""
    if old["status"] == OK and new["status"] == OK and dtype in DTYPES:
        old_values = {"loss": old["loss"], **old["grads"]}
        new_values = {"loss": new["loss"], **new["grads"]}
        for name, value in new_values.items():
            before = old_values.get(name)
            if before == value:
                continue
            if not all(isinstance(v, float | int) for v in (before, value)):
                # inf/nan (written as strings) on one side: moved by an unbounded amount
                moved, detail = float("inf"), f"{name} {before!r} → {value!r}"
                continue
            step = DTYPES[dtype].ulp(Fraction(before))
            ulps = float(abs(Fraction(value) - Fraction(before)) / step)
            if ulps > moved:
                moved, detail = ulps, f"{name} {before!r} → {value!r}"
        if moved and status == SAME:
            status = CHANGED
    return Change(backend, dtype, status, was, now, moved, detail)
