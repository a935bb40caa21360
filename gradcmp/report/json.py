"""The JSON report (docs/design.md, "Contracts"): one object, numbers that round-trip."""

from __future__ import annotations

import json
import math
from fractions import Fraction
from typing import TYPE_CHECKING

from ..judging.agreement import Error, to_float, worst_output
from ..params import element_names
from ..reference.values import ReferenceValues
from .lines import outcome, outcome_counts, verdict_line

if TYPE_CHECKING:  # the runner makes Reports; renderers only read them
    from ..judging.runner import Report, Result

# An exact reference is also written as a fraction string when it is this short; long ones
# (decimal data, many rows) would only bloat the file.
MAX_FRACTION_CHARS = 100


def number(x: float | None) -> float | str | None:
    """Python floats round-trip through ``json`` (it writes ``repr``); JSON has no literal for
    non-finite numbers, so they are written as the strings "inf", "-inf" and "nan"."""
    if x is None or math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def fraction_text(x: Fraction) -> str | None:
    text = str(x)
    return text if len(text) <= MAX_FRACTION_CHARS else None


def _values(values: ReferenceValues, with_grads: bool = True) -> dict:
    grads = values.grads if with_grads else {}
    return {
        "loss": number(to_float(values.loss)),
        "grads": {k: number(to_float(v)) for k, v in grads.items()},
        "exact": {
            "loss": fraction_text(values.loss),
            "grads": {k: fraction_text(v) for k, v in grads.items()},
        },
    }


def _errors(errors: dict[str, Error]) -> dict:
    return {
        k: {
            "abs": number(e.abs),
            "rel": number(e.rel),
            "ulp": number(e.ulp),
            "bound": number(e.bound),
            "ratio": number(e.ratio),
            "magnitude": number(e.magnitude),
            "resolution": number(e.resolution),
        }
        for k, e in errors.items()
    }


def _summary(r: Result, groups: dict[str, list[str]]) -> tuple[dict, dict]:
    """Per parameter tensor: its worst element's value and error, and how many there are."""
    grads, errors = {}, {}
    for name, outputs in groups.items():
        present = [k for k in outputs if k in r.errors]
        if not present:
            continue
        k = worst_output(r.errors, present)
        if k != "loss":
            grads[name] = {"worst": k, "value": number(r.grads[k]), "elements": len(present)}
        errors[name] = {"worst": k, **_errors({k: r.errors[k]})[k]}
    return grads, errors


def _result(r: Result, groups: dict[str, list[str]] | None = None, ended: str = "") -> dict:
    if groups is not None:
        grads, errors = _summary(r, groups)
    else:
        grads = {k: number(v) for k, v in r.grads.items()}
        errors = _errors(r.errors)
    return {
        "backend": r.backend,
        "dtype": r.dtype,
        "status": r.status,
        "side": r.side,
        "reference": r.reference or None,
        "verdict": r.verdict,
        "why": r.why,
        "loss": number(r.loss),
        "grads": grads,
        "errors": errors,
        "seconds": r.seconds,
        "compile_seconds": r.compile_seconds,
        "note": r.note,
        "device": r.device,
        "settings": r.settings,
        # How it ended, as the verdict line counts it: its verdict, or failed / skipped /
        # missing (not installed although named with -b: the run fails on it, exit 3).
        "outcome": ended or (r.verdict if r.status == "ok" else r.status),
        "missing": r.missing,
        **(_world(r.world) if r.world is not None else {}),
    }


def _world(world: dict) -> dict:
    """A distributed result's world (docs/design.md, "JSON report")."""
    keys = (
        "world_size",
        "engine",
        "comm",
        "shards",
        "reduction",
        "startup_seconds",
        "setup_seconds",
        "ranks",
    )
    return {k: world.get(k) for k in keys}


def _port(report: Report) -> dict:
    """The port object (docs/design.md, "JSON report"), with each side's reference."""
    document = report.port.to_dict()
    document["references"] = {
        name: {
            "method": side.method if not side.failure else None,
            "failure": side.failure or None,
            "steps": side.steps,
            "seconds": side.seconds,
            **(_values(side.at_float64, True) if side.at_float64 is not None else {}),
        }
        for name, side in report.reference.sides.items()
    }
    return document


DETAILS = ("full", "summary")


def to_dict(report: Report, detail: str = "full") -> dict:
    """The JSON report. ``detail="summary"`` keeps, per parameter tensor, only its worst
    element (for models with many parameters); ``"full"`` has every element."""
    problem, reference = report.problem, report.reference
    groups = None
    if detail == "summary":
        groups = {"loss": ["loss"]}
        for name, value in problem.params.values.items():
            groups[name] = element_names(name, value.shape)
    data, params = problem.data, problem.params
    return {
        "gradcmp": report.environment.get("gradcmp"),
        "verdict": report.verdict,
        "exit_code": report.exit_code,
        "model": problem.model.name,
        "formula": problem.model.formula,
        "data": {
            "path": data.path,
            "rows": data.rows,
            "features": data.features,
            "feature_names": list(data.feature_names),
            "target": data.target,
            "sha256": data.sha256,
        },
        "params": dict(
            zip(params.elements(), (float(x) for v in params.values.values() for x in v.ravel()))
        )
        if groups is None
        else {k: {"shape": list(v.shape)} for k, v in params.values.items()},
        "dtypes": [d.name for d in report.dtypes],
        "backends": report.backends,
        "reference": {
            "name": reference.name,
            "method": reference.method,
            # The exact answer for the inputs as written; ``by_dtype`` for what each dtype got.
            **_values(reference.as_written, groups is None),
            "by_dtype": {d: _values(v, groups is None) for d, v in reference.by_dtype.items()},
        },
        "input_rounding": {
            d: {
                "values": r.values,
                "rounded": r.rounded,
                "max_rel": r.max_rel,
                "shift_abs": r.shift_abs,
                "shift_rel": r.shift_rel,
            }
            for d, r in reference.rounding.items()
        },
        "detail": detail,
        # What the verdict line says: every outcome's count (zeros included) and the line.
        "counts": outcome_counts(report),
        "verdict_line": verdict_line(report),
        "results": [_result(r, groups, outcome(report, r)) for r in report.results],
        **({"port": _port(report)} if report.port is not None else {}),
        "baseline": report.baseline.to_dict() if report.baseline else None,
        "timings": report.timings,
        "environment": report.environment,
    }


def render(report: Report, detail: str = "full") -> str:
    document = to_dict(report, detail)
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
