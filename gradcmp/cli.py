"""The command line: parse options, build a Problem, run it, render the Report. Nothing else.

Imports here are kept to click so that ``gradcmp --help`` starts fast; numpy, rich and the
frameworks are imported by the commands that need them.
"""

from __future__ import annotations

import math
import os
import re
import sys
import traceback

import click

from .errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, GradcmpError, Interrupted

# Control characters (from a file name or a cell) would break the message's one line.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _finite_seconds(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", param_hint="'--timeout'")
    return value


def _error(message: str) -> None:
    one_line = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
    click.echo(f"gradcmp: error: {one_line}", err=True)


class GradcmpGroup(click.Group):
    """Turns every failure into one line on stderr and the documented exit code."""

    def invoke(self, ctx):
        # Ctrl-C inside a command: ours to report (click would print a bare newline first).
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        args = sys.argv[1:] if args is None else list(args)
        debug = "--debug" in args or bool(os.environ.get("GRADCMP_DEBUG"))
        try:
            rv = super().main(args, prog_name or "gradcmp", complete_var, False, **extra)
            code = rv if isinstance(rv, int) else 0
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            command = exc.ctx.command_path if getattr(exc, "ctx", None) else "gradcmp"
            _error(f"{exc.format_message().rstrip('.')} (see '{command} --help')")
            code = EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        except (KeyboardInterrupt, click.Abort):
            _error("interrupted")
            code = EXIT_INTERRUPTED
        except GradcmpError as exc:
            if debug:
                traceback.print_exc()
            _error(str(exc))
            code = exc.exit_code
        except Exception as exc:
            if debug:
                traceback.print_exc()
            first = (str(exc).splitlines() or [""])[0]
            _error(
                f"internal error: {type(exc).__name__}: {first} (this is a bug in gradcmp: "
                "please report it with the traceback that --debug prints)"
            )
            code = EXIT_INTERNAL
        if standalone_mode:
            sys.exit(code)
        return code


debug_option = click.option(
    "--debug", is_flag=True, help="Show the Python traceback of an error.", expose_value=False
)


@click.group(cls=GradcmpGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradcmp", prog_name="gradcmp")
@debug_option
def cli() -> None:
    """Do these gradients agree, and if not, who is wrong?

    Computes a loss and its gradient with several independent implementations (backends) and
    holds each against an exact reference.
    """


@cli.command()
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=True, path_type=str),
    default=None,
    help="CSV (with a header row), .npy, .npz or Parquet file, or a directory of Parquet "
    "partitions [default: the bundled seed data, xy.csv].",
)
@click.option("--target", default="y", show_default=True, help="Name of the target column.")
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Built-in model: linear, logistic, softmax, mlp (gradcmp models) [default: linear].",
)
@click.option(
    "--hidden",
    metavar="N[,N]",
    help="mlp: hidden layer sizes, one or two [default: 8].",
)
@click.option("--seed", type=int, help="mlp: seed of the initial weights [default: 0].")
@click.option(
    "--loss",
    "loss_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="A loss file (PARAMS, loss(params, X, y, xp), optional loss_torch/loss_jax/…).",
)
@click.option(
    "-b",
    "--backend",
    "backend_list",
    multiple=True,
    help="Backends (gradcmp backends), comma-separated or repeated; 'all' for every "
    "single-process one; a world of N ranks by name, torch-ddp:4 "
    "[default: native,torch-grad,torch-backward,jax-grad].",
)
@click.option(
    "--dtype",
    "dtype_list",
    default="float32,float64",
    show_default=True,
    help="Dtypes to compute in, comma-separated: float64, float32, float16, bfloat16.",
)
@click.option(
    "--param",
    "param_list",
    multiple=True,
    metavar="NAME=VALUE",
    help="Parameter value (repeatable): theta1=0.5, w[2]=1 or w=1,2,3 [default: zeros].",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "plain", "json", "junit", "markdown", "github"]),
    default="table",
    show_default=True,
    help="Report format on stdout (or in --output); github: workflow annotations at the "
    "lines findings point to, and the Markdown report into $GITHUB_STEP_SUMMARY.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=str), help="Write the report here."
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=str),
    help="Also write every format here: gradcmp.txt, gradcmp.json, gradcmp-junit.xml, gradcmp.md.",
)
@click.option(
    "--json-detail",
    type=click.Choice(["full", "summary"]),
    default="full",
    show_default=True,
    help="JSON: every gradient element, or per parameter tensor its worst one.",
)
@click.option("--strict", is_flag=True, help="Fail (exit 4) on an inconclusive verdict.")
@click.option(
    "--accept",
    type=click.FloatRange(min=0, max=1, max_open=True),
    metavar="REL",
    help="A port's sides may differ by this relative amount (still reported) [default: the "
    "loss file's ACCEPT, else 0].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    callback=lambda ctx, param, value: _finite_seconds(value),
    help="Seconds one backend call may take; past it the result is failed (exit 3).",
)
@click.option(
    "--workers/--no-workers",
    default=True,
    show_default=True,
    help="Run each framework's backends in a worker process of its own, beside the others "
    "and the reference (faster; isolates their global state).",
)
@click.option(
    "--timings", is_flag=True, help="Show where the time went: load, reference, each call."
)
@click.option(
    "--detail",
    is_flag=True,
    help="Table: every output's value, error and τ under the one-line-per-backend summary "
    "(one output per line where the grid is wider than the terminal).",
)
@click.option(
    "--save-baseline",
    type=click.Path(dir_okay=False, path_type=str),
    help="Save this run's JSON report as a baseline.",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Report what changed since this baseline (a saved JSON report).",
)
@debug_option
def run(
    data_path,
    target,
    model_name,
    hidden,
    seed,
    loss_path,
    backend_list,
    dtype_list,
    param_list,
    output_format,
    output,
    report_dir,
    json_detail,
    strict,
    accept,
    timeout,
    workers,
    timings,
    detail,
    save_baseline,
    baseline_path,
) -> int:
    """Compute loss and gradient with each backend and hold them against the exact reference.

    Exit codes: 0 agree (inconclusive warns), 1 disagree, 2 usage or bad input, 3 a backend
    named with -b is missing or failed, 4 inconclusive under --strict, 70 internal error,
    130 interrupted.
    """
    from . import api
    from .errors import UsageError

    if model_name and loss_path:
        raise UsageError("--model and --loss exclude each other", hint="give one of them")
    report = api.run_from_options(
        data=data_path,
        target=target,
        model=model_name or "linear",
        model_options={"hidden": hidden, "seed": seed},
        loss=loss_path,
        backends=",".join(backend_list) if backend_list else None,
        dtypes=dtype_list,
        params=param_list,
        strict=strict,
        baseline=baseline_path,
        timeout=timeout,
        workers=workers,
        accept=accept,
    )
    api.write_outputs(
        report, output_format, output, report_dir, save_baseline, json_detail, timings, detail
    )
    return report.exit_code


@cli.command()
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
        from . import selftest_distributed as planted

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


@cli.command()
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
@debug_option
def bench(rows_text, backend_list, dtype_list, features, repeat, plot_path, output_format):
    """Time each backend's loss-and-gradient call on random data of growing size.

    Per backend × dtype × size: median and spread of the call (jit compile apart), the peak
    memory the calls added, and the fraction of the memory-bandwidth limit (a single read of
    the inputs at the read speed numpy reaches here). Each backend runs in its own process.
    A distributed backend (-b torch-ddp:1,torch-ddp:2,torch-ddp:4) runs --repeat worlds per
    size: the engine's own time per gradient, and each world's start-up in a column apart.
    """
    from .bench_report import parse_rows, run_and_report

    return run_and_report(
        parse_rows(rows_text),
        ",".join(backend_list) if backend_list else None,
        dtype_list,
        features,
        repeat,
        plot_path,
        output_format,
    )


@cli.command()
def backends() -> None:
    """List the backends: what each computes, and whether it can run here (and why not)."""
    from rich.table import Table

    from .backends import BACKENDS, REFERENCE_NAME, SINGLE_PROCESS, missing_modules
    from .backends.distributed import ENGINES, Distributed
    from .console import console_for
    from .environment import _version

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
        framework = ", ".join(f"{m} {_version(m) or ''}".strip() for m in backend.requires)
        table.add_row(
            name, status, framework or "python", ", ".join(backend.dtypes), backend.description
        )
    console_for(sys.stdout).print(table)


@cli.command()
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


def main() -> None:
    """The console script. While a timed-out backend still runs in a thread, it skips the
    interpreter's shutdown (native code in that thread can abort it) and exits directly."""
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    timeouts = sys.modules.get("gradcmp.timeouts")
    if timeouts is not None and any(t.is_alive() for t in timeouts.ABANDONED):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
