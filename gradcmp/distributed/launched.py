"""gradcmp as one rank of a world someone else launched (``torchrun``, a cluster launcher that
sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT): ``python -m gradcmp.dist``.

Ranks may be on several hosts and no process needs every row. Each rank

1. reads its own rows: its contiguous run of a directory's Parquet partitions, or its
   contiguous shard of one file (partitions.py);
2. computes its gradient through DDP or FSDP2 (torch_engines.engine_step, the same code as
   ``gradcmp run -b torch-ddp:N``), weighted by its share w_r = n_r/n of the rows;
3. computes the exact (or high-precision) reference of its own rows, weighted by w_r
   (partial_reference.py): the reference is computed partition by partition on the ranks
   themselves — no other engine to install, and each rank already holds its rows — and rank 0
   adds the parts exactly;
4. sends its gradient and its part to rank 0, which judges every rank's gradient by the rule,
   prints the report and broadcasts the exit code, so every rank (and torchrun) ends with it.
"""

from __future__ import annotations

import os
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .shards import MEAN, Shards, row_reduction


def launched_world() -> tuple[int, int]:
    """(rank, world size) from the launcher's environment, or a UsageError saying how to launch."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise UsageError(
            "python -m gradcmp.dist runs as one rank of a launched world (RANK and WORLD_SIZE "
            "are not set)",
            hint="torchrun --nproc-per-node 2 -m gradcmp.dist …, or gradcmp run -b torch-ddp:2",
        )
    return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])


def local_rows(data: str | None, target: str, rank: int, world_size: int):
    """(this rank's Dataset, what the report calls the data)."""
    from .. import data as data_module
    from ..partitions import for_rank, load_files, partition_files, rows_of

    if data is not None and Path(data).is_dir():
        files = partition_files(Path(data))
        mine = for_rank(files, rank, world_size)
        if not mine:
            raise UsageError(
                f"{data}: {len(files)} partitions for {world_size} ranks",
                hint="give every rank at least one partition (or fewer ranks)",
            )
        return load_files(mine, target, data), data
    dataset = data_module.load(data, target)
    start, stop = Shards.split(dataset.rows, world_size).bounds[rank]
    return rows_of(dataset, start, stop), dataset.path


def run(options: dict) -> int:
    """One rank's whole run; returns the exit code every rank ends with."""
    import torch.distributed as dist

    from .. import api
    from ..dtypes import parse_dtypes
    from ..params import Params
    from ..problem import Problem

    rank, world_size = launched_world()
    dist.init_process_group("gloo")
    try:
        began = time.perf_counter()
        model = api._model(options["model"], options["loss"], {}, None)
        local, shown = local_rows(options["data"], options["target"], rank, world_size)
        params = api._with_params(
            Params.from_arrays(model.initial_params(local)), options["params"]
        )
        problem = Problem(model, local, params)
        sizes = _gather_all(local.rows)
        rows, start = sum(sizes), sum(sizes[:rank])
        reduction = _agreed(_local_reduction(problem))
        weight = Fraction(local.rows, rows) if reduction == MEAN else Fraction(1)
        dtypes = parse_dtypes(options["dtypes"])
        from .torch_engines import engine_step

        steps = {}
        for dtype in dtypes:
            steps[dtype.name] = engine_step(
                f"torch-{options['engine']}", problem, dtype, 0, local.rows, weight, world_size
            )
        from ..reference.compute import compute_reference
        from .partial_reference import partial

        part = partial(compute_reference(problem, dtypes), weight, problem, first=rank == 0)
        sent = {"steps": steps, "part": part, "shard": (start, start + local.rows)}
        gathered = [None] * world_size if rank == 0 else None
        dist.gather_object(sent, gathered, dst=0)
        code = [0]
        if rank == 0:
            from .report_launched import report_of

            report = report_of(
                problem, shown, rows, sizes, gathered, dtypes, options, reduction, began
            )
            api.write_outputs(report, options["format"], options["output"])
            code = [report.exit_code]
        dist.broadcast_object_list(code, src=0)
        return code[0]
    finally:
        dist.destroy_process_group()


def _gather_all(value):
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def _local_reduction(problem) -> str | None:
    """MEAN or SUM, checked on this rank's rows split in two (shards.py)."""
    import torch

    from ..backends._torch import torch_inputs, torch_loss
    from ..dtypes import DTYPES

    params, X, y = torch_inputs(problem, DTYPES["float64"], leaves=False)
    loss_fn, _ = torch_loss(problem)

    def loss_of(start: int, stop: int) -> float:
        with torch.no_grad():
            return float(loss_fn(params, X[start:stop], y[start:stop]))

    return row_reduction(loss_of, problem.data.rows, min(2, problem.data.rows))


def _agreed(reductions) -> str:
    every = _gather_all(reductions)
    found = {r for r in every if r is not None}
    if None in every or len(found) != 1:
        raise UsageError(
            "the loss is not a mean or a sum over rows on every rank, so the ranks' parts do "
            "not add up to it",
            hint="gradcmp.dist checks losses of the form mean(row losses) or sum(row losses)",
        )
    return found.pop()


def as_arrays(grads: dict) -> dict:
    return {k: np.asarray(v) for k, v in grads.items()}
