"""Rank 0 of a launched world (launched.py): every rank's gradient and reference part made
into the same Report ``gradcmp run`` gives, judged by the same rule."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .. import environment
from ..backends.base import Output
from ..judging.execute import OK, Outcome, flatten
from ..judging.runner import Report, judge
from .consensus import same_values
from .partial_reference import combined


def report_of(
    problem, shown, rows, sizes, gathered, dtypes, options, reduction, began, engine_comm
) -> Report:
    """``problem`` is rank 0's own rows; the report's dataset has the whole data's shape (a
    broadcast placeholder: rank 0 holds no other rank's rows)."""
    whole = dataclasses.replace(
        problem.data,
        path=shown,
        X=np.broadcast_to(np.zeros((1, problem.data.features)), (rows, problem.data.features)),
        y=np.broadcast_to(np.zeros(1), (rows,)),
        decimal_cells={},
        decimals=None,
    )
    whole_problem = dataclasses.replace(problem, data=whole, _inputs={})
    reference = combined([sent["part"] for sent in gathered])
    world_size = len(gathered)
    engine = options["engine"]
    name = f"jax-sharded:{world_size}" if engine == "jax" else f"torch-{engine}:{world_size}"
    results = []
    for dtype in dtypes:
        steps = [sent["steps"][dtype.name] for sent in gathered]
        first = steps[0]
        loss, grads = flatten(problem, first["loss"], first["ranks"][0])
        others = {}
        for rank, step in enumerate(steps[1:], start=1):
            _, flat = flatten(problem, None, step["ranks"][0])
            if not same_values(flat, grads):
                others[rank] = flat
        world = {
            "world_size": world_size,
            "engine": engine_comm[0],
            "comm": engine_comm[1],
            "shards": sizes,
            "reduction": reduction,
            "startup_seconds": None,  # the launcher's, not gradcmp's
        }
        output = Output(loss=None, grads={}, side=first["side"], world=world,
                        extra_roundings=world_size + 3)
        seconds = max(step["seconds"] for step in steps)
        outcome = Outcome(OK, seconds, loss=loss, grads=grads, output=output, other_ranks=others)
        results.append(judge(whole_problem, reference, name, dtype, outcome))
    return Report(
        problem=whole_problem,
        dtypes=list(dtypes),
        backends=[name],
        explicit_backends=True,
        reference=reference,
        results=results,
        timings={"total": time.perf_counter() - began, "reference": reference.seconds},
        environment=environment.describe(),
        strict=bool(options.get("strict")),
    )
