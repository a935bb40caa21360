"""The subcommands besides ``run``: ``selftest``, ``bench``, ``backends``, ``models``
(cli.py adds them to the group). Like cli.py, only click is imported here: each command
imports what it needs when it runs."""

from __future__ import annotations

import sys

import click

debug_option = click.option(
    "--debug", is_flag=True, help="Show the Python traceback of an error.", expose_value=False
)


@click.command()
@click.option(
    "-b",
    "--backend",
    "backend_list",
    multiple=True,
    help="Autodiff backends to plant the bugs through: torch-grad, torch-backward, jax-grad, "
    "torch-func, jax-jit, jax-fwd [default: the first three that are installed].",
)
@click.option(
    "--ports",
    is_flag=True,
    help="Plant the port bugs into a loss file's torch and JAX sides instead.",
)
@click.option(
    "--distributed",
    is_flag=True,
    help="Plant bugs into distributed steps (grad_torch_dist, grad_jax_dist) instead; "
    "check the engines (torch-ddp, torch-fsdp, jax-sharded, jax-shardmap) agree.",
)
@debug_option
def selftest(backend_list, ports, distributed) -> int:
    """Plant known bugs into the seed problem and show which the agreement rule catches.

    Exits 0 only if every planted bug is caught in float64 and the clean problem agrees.
    """
    from .backends import parse_backends
    from .console import console_for
    from .selftest import render, run_selftest

    if distributed:
        if ports or backend_list:
            from .errors import UsageError

            raise UsageError("--distributed runs its own backends: give it alone")
        from .selftest import distributed as planted

        result = planted.run_distributed_selftest(
            progress=lambda what: click.echo(f"selftest --distributed: {what}", err=True)
        )
        planted.render(result, console_for(sys.stdout))
        return 0 if result.passed else 1
    if ports:
        import tempfile

        from .selftest import render_ports, run_port_selftest

        with tempfile.TemporaryDirectory() as directory:
            clean, outcomes = run_port_selftest(directory)
        render_ports(clean, outcomes, console_for(sys.stdout))
        return 0 if clean == 0 and all(o.caught for o in outcomes) else 1
    backends = parse_backends(",".join(backend_list)) if backend_list else None
    result = run_selftest(backends)
    render(result, console_for(sys.stdout))
    return 0 if result.passed else 1


@click.command()
@click.option(
    "--rows",
    "rows_text",
    default="1e3,1e5,1e6,1e7",
    show_default=True,
    help="Dataset sizes, comma-separated (1e6 or 1000000).",
)
@click.option(
    "-b",
    "--backend",
    "backend_list",
    multiple=True,
    help="Backends to time (comma-separated or repeated; 'all'; 'exact' times the reference) "
    "[default: the seed's four].",
)
@click.option("--dtype", "dtype_list", default="float32,float64", show_default=True, help="Dtypes.")
@click.option(
    "--features",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Feature columns of the random data (linear model).",
)
@click.option(
    "--repeat",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed calls (a distributed backend: worlds).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Write a log-log PNG of time against rows (needs matplotlib: gradcmp[plot]).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the torch and JAX backends compute (-b torch-grad@cuda: one alone), and "
    "whose roofline the table shows: cuda measures the GPU's read bandwidth and float32 "
    "matmul TFLOP/s (TF32 and not).",
)
@debug_option
def bench(rows_text, backend_list, dtype_list, features, repeat, plot_path, output_format, device):
    """Time each backend's loss-and-gradient call on random data of growing size.

    Per backend × dtype × size: median and spread of the call (jit compile apart), the peak
    memory the calls added, and the fraction of the memory-bandwidth limit (a single read of
    the inputs at the read speed numpy reaches here). Each backend runs in its own process.
    A distributed backend (-b torch-ddp:1,torch-ddp:2,torch-ddp:4) runs --repeat worlds per
    size: the engine's own time per gradient, and each world's start-up in a column apart.
    """
    from .bench.report import parse_rows, run_and_report

    return run_and_report(
        parse_rows(rows_text),
        ",".join(backend_list) if backend_list else None,
        dtype_list,
        features,
        repeat,
        plot_path,
        output_format,
        device,
    )


@click.command()
def backends() -> None:
    """List the backends: what each computes, and whether it can run here (and why not)."""
    from rich.table import Table

    from .backends import BACKENDS, REFERENCE_NAME, SINGLE_PROCESS, missing_modules
    from .backends.distributed import ENGINES, Distributed
    from .console import console_for
    from .environment import installed_version

    table = Table("backend", "status", "framework", "dtypes", "what it computes")
    table.add_row(REFERENCE_NAME, "reference", "", "all", "exact rational arithmetic (always run)")
    listed = [(name, BACKENDS[name]) for name in SINGLE_PROCESS]
    # A world size N from 1 to 8 (ENGINE alone: 2).
    listed += [(f"{engine}:N", Distributed(engine, 2)) for engine in ENGINES]
    for name, backend in listed:
        if isinstance(backend, Distributed):
            backend.description = ENGINES[backend.engine][1]
        missing = missing_modules(backend)
        status = f"[red]missing {', '.join(missing)}[/]" if missing else "[green]usable[/]"
        framework = ", ".join(f"{m} {installed_version(m) or ''}".strip() for m in backend.requires)
        table.add_row(
            name, status, framework or "python", ", ".join(backend.dtypes), backend.description
        )
    console_for(sys.stdout).print(table)


@click.command()
def models() -> None:
    """List the built-in models with their parameters and formula."""
    from rich.markup import escape
    from rich.table import Table

    from .console import console_for
    from .models import MODELS
    from .models.base import DataShape

    table = Table("model", "parameters (d features)", "loss", "description")
    for name, model in MODELS.items():
        shapes = model.param_shapes(DataShape(1, 3)), model.param_shapes(DataShape(3, 3))
        params = (
            ", ".join(shapes[0])
            + "  (d = 3: "
            + ", ".join(f"{k}{list(s) if s else ''}" for k, s in shapes[1].items())
            + ")"
        )
        table.add_row(name, escape(params), escape(model.formula), escape(model.description))
    console_for(sys.stdout).print(table)
