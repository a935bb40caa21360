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
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UsageError
from ..models.base import DataShape
from .shards import MEAN, SUM, Shards, passing_reductions


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
    from ..loading import data as data_module
    from ..loading.partitions import for_rank, load_files, partition_files, rows_of

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
    if dataset.rows < world_size:
        raise UsageError(
            f"{dataset.path}: {dataset.rows} rows for {world_size} ranks",
            hint="give every rank at least one row (or fewer ranks)",
        )
    start, stop = Shards.split(dataset.rows, world_size).bounds[rank]
    return rows_of(dataset, start, stop), dataset.path


def run(options: dict) -> int:
    """One rank's whole run; returns the exit code every rank ends with."""
    from .. import api
    from ..dtypes import parse_dtypes
    from ..params import Params
    from ..problem import Problem

    rank, world_size = launched_world()
    jax_engine = options["engine"] == "jax"
    comm = JaxComm(options, rank, world_size) if jax_engine else TorchComm()
    try:
        began = time.perf_counter()
        model = api._model(options["model"], options["loss"], {}, None)
        local, shown = local_rows(options["data"], options["target"], rank, world_size)
        # Parameter shapes from the whole data's shape (a classifier's classes: the largest
        # label of any rank), not this rank's rows.
        shapes = comm.all_gather(DataShape.of(local))
        whole = DataShape(shapes[0].features, max(s.classes for s in shapes))
        params = api._with_params(
            Params.from_arrays(model.initial_params(whole)), options["params"]
        )
        problem = Problem(model, local, params)
        sizes = comm.all_gather(local.rows)
        rows, start = sum(sizes), sum(sizes[:rank])
        reduction = _agreed(comm, _local_reduction(problem, jax_engine))
        weight = Fraction(local.rows, rows) if reduction == MEAN else Fraction(1)
        dtypes = parse_dtypes(options["dtypes"])
        steps = {}
        for dtype in dtypes:
            if jax_engine:
                from .jax_engines import launched_step

                row_weight = weight / local.rows
                steps[dtype.name] = launched_step(problem, dtype, row_weight, max(sizes))
            else:
                from .torch_engines import engine_step

                engine = f"torch-{options['engine']}"
                steps[dtype.name] = engine_step(
                    engine, problem, dtype, 0, local.rows, weight, world_size
                )
        from ..reference.compute import compute_reference
        from .partial_reference import partial

        part = partial(compute_reference(problem, dtypes), weight, problem, first=rank == 0)
        sent = {"steps": steps, "part": part, "shard": (start, start + local.rows)}
        gathered = comm.all_gather(sent)
        code = 0
        if rank == 0:
            from .report_launched import report_of

            report = report_of(
                problem, shown, rows, sizes, gathered, dtypes, options, reduction, began,
                comm.describe(),
            )
            api.write_outputs(report, options["format"], options["output"])
            code = report.exit_code
        code = comm.all_gather(code)[0]
    finally:
        comm.close()
    # Every rank ends with rank 0's code now: the interpreter's finalization with gloo's or
    # XLA's threads still about can abort ("terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class TorchComm:
    """torch.distributed over gloo, the launcher's rendezvous (env://)."""

    def __init__(self):
        import torch.distributed as dist

        dist.init_process_group("gloo")

    def all_gather(self, value) -> list:
        import torch.distributed as dist

        out = [None] * dist.get_world_size()
        dist.all_gather_object(out, value)
        return out

    def describe(self) -> tuple[str, str]:
        import torch.distributed as dist

        return "torch.distributed (launched)", dist.get_backend()

    def close(self) -> None:
        import torch.distributed as dist

        dist.destroy_process_group()


class JaxComm:
    """jax.distributed: a coordinator at ``--coordinator`` (else $JAX_COORDINATOR_ADDRESS);
    Python objects travel as pickled bytes through ``process_allgather``."""

    def __init__(self, options: dict, rank: int, world_size: int):
        import jax

        address = options.get("coordinator") or os.environ.get("JAX_COORDINATOR_ADDRESS")
        if not address:
            raise UsageError(
                "--engine jax needs the coordinator's address",
                hint="give --coordinator HOST:PORT (the same on every process)",
            )
        jax.distributed.initialize(address, world_size, rank)

    def all_gather(self, value) -> list:
        import pickle

        from jax.experimental import multihost_utils

        data = np.frombuffer(pickle.dumps(value), dtype=np.uint8)
        sizes = multihost_utils.process_allgather(np.array([data.size], dtype=np.int64))
        padded = np.zeros(int(sizes.max()), dtype=np.uint8)
        padded[: data.size] = data
        every = multihost_utils.process_allgather(padded)
        return [pickle.loads(row[: int(n)].tobytes()) for row, n in zip(every, sizes.ravel())]

    def describe(self) -> tuple[str, str]:
        import jax

        return "jax (launched)", f"XLA collectives, {jax.devices()[0].platform} devices"

    def close(self) -> None:
        import jax

        jax.distributed.shutdown()


def _local_reduction(problem, jax_engine: bool) -> list[str]:
    """The reductions (MEAN, SUM) this rank's rows allow, checked on them split in two, value
    and gradient (shards.py), with the side the engine runs. A one-row rank allows both."""
    from ..dtypes import DTYPES

    rows = problem.data.rows
    if jax_engine:
        from ..backends._jax import jax_inputs
        from .jax_engines import value_and_gradient

        with jax_inputs(problem, DTYPES["float64"]) as (params, X, y, loss_fn, _):
            loss_of = value_and_gradient(params, X, y, loss_fn)
            return passing_reductions(loss_of, rows, 2) if rows > 1 else [MEAN, SUM]
    from ..backends._torch import torch_inputs, torch_loss
    from .torch_engines import value_and_gradient

    params, X, y = torch_inputs(problem, DTYPES["float64"])
    loss_fn, _ = torch_loss(problem)
    loss_of = value_and_gradient(params, X, y, loss_fn)
    return passing_reductions(loss_of, rows, 2) if rows > 1 else [MEAN, SUM]


def _agreed(comm, reductions: list[str]) -> str:
    """The first reduction every rank allows; a UsageError where there is none."""
    every = comm.all_gather(reductions)
    common = [r for r in (MEAN, SUM) if all(r in allowed for allowed in every)]
    if not common:
        raise UsageError(
            "the loss is not a mean or a sum over rows on every rank, so the ranks' parts do "
            "not add up to it",
            hint="gradcmp.dist checks losses of the form mean(row losses) or sum(row losses)",
        )
    return common[0]
