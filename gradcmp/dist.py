"""``python -m gradcmp.dist``: gradcmp as one rank of a world a launcher started.

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST:PORT \\
        -m gradcmp.dist --data parts/ --loss loss.py --engine ddp

Every rank reads only its own rows (a directory of Parquet partitions is split among the ranks
by file), computes its gradient through DDP or FSDP2 and its part of the exact reference;
rank 0 prints the report (distributed/launched.py). Every rank exits with the report's code.
"""

from __future__ import annotations

import os
import sys

import click

from .errors import EXIT_USAGE, GradcmpError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", "data", default=None, help="A data file, or a directory of Parquet "
              "partitions (each rank reads its own). Default: the bundled data/xy.csv.")
@click.option("--target", default="y", show_default=True, help="The target column.")
@click.option("--model", default="linear", show_default=True, help="A built-in model.")
@click.option("--loss", "loss", default=None, help="A loss file (instead of --model).")
@click.option("--param", "params", multiple=True, help="NAME=VALUE, as for gradcmp run.")
@click.option("--dtype", "dtypes", default="float32,float64", show_default=True,
              help="float32, float64, or both.")
@click.option("--engine", type=click.Choice(["ddp", "fsdp", "jax"]), default="ddp",
              show_default=True, help="torch DistributedDataParallel, FSDP2 (fully_shard), or "
              "JAX over jax.distributed (jit over every process's devices).")
@click.option("--coordinator", default=None, help="--engine jax: the coordinator's HOST:PORT "
              "(default $JAX_COORDINATOR_ADDRESS), the same on every process.")
@click.option("--format", "output_format", default="table", show_default=True,
              type=click.Choice(["table", "plain", "json", "junit", "markdown"]),
              help="The report rank 0 prints.")
@click.option("--output", default=None, help="Write the report to this file (rank 0).")
def main(
    data, target, model, loss, params, dtypes, engine, coordinator, output_format, output
) -> None:
    """Check a distributed gradient as one rank of a launched world (torchrun)."""
    from .distributed.launched import run

    options = {
        "data": data,
        "target": target,
        "model": model,
        "loss": loss,
        "params": list(params),
        "dtypes": dtypes,
        "engine": engine,
        "coordinator": coordinator,
        "format": output_format,
        "output": output,
    }
    _report_to_stdout_only()
    try:
        code = run(options)
    except GradcmpError as exc:
        click.echo(f"gradcmp: error: {exc}", err=True)
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    sys.exit(code)


def _report_to_stdout_only() -> None:
    """stdout carries rank 0's report (JSON, JUnit …); what native code writes to file
    descriptor 1 (gloo's "[Gloo] Rank 0 is connected …") goes to stderr instead."""
    try:
        report = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # streams without a descriptor
        return
    sys.stdout = report


if __name__ == "__main__":
    main()
