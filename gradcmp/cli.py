"""The command line: parse options, build a Problem, run it, render the Report. Nothing else.

Imports here are kept to click so that ``gradcmp --help`` starts fast; numpy, rich and the
frameworks are imported by the commands that need them.
"""

from __future__ import annotations

import math
import os
import re
import signal
import sys
import threading
import traceback

import click

from .commands import backends, bench, debug_option, models, selftest
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


class _Terminated(list):
    """Whether SIGTERM arrived (a CI job's cancel, ``timeout``, ``kill``), and the handler
    it replaced."""

    previous = signal.SIG_DFL


def _on_sigterm_unwind() -> _Terminated | None:
    """SIGTERM unwinds gradcmp as Ctrl-C does (KeyboardInterrupt), so that the worlds,
    workers and temporary directories it started are ended on the way out (without it the
    process ended at once: a world's directory and what its ranks started were left behind);
    then gradcmp ends by SIGTERM itself. Only in the main thread (where handlers live)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    terminated = _Terminated()

    def unwind(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    terminated.previous = signal.signal(signal.SIGTERM, unwind)
    return terminated


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
        terminated = _on_sigterm_unwind()
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
            _error("terminated" if terminated else "interrupted")
            code = EXIT_INTERRUPTED
        except GradcmpError as exc:
            if debug:
                traceback.print_exc()
            _error("terminated" if terminated and isinstance(exc, Interrupted) else str(exc))
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
        finally:
            if terminated is not None:
                signal.signal(signal.SIGTERM, terminated.previous)
        if terminated:  # everything ended on the way out: now end as SIGTERM ends a process
            sys.stdout.flush()
            sys.stderr.flush()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
        if standalone_mode:
            sys.exit(code)
        return code


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
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default="cpu",
    show_default=True,
    help="Where the torch and JAX backends compute; one backend alone: -b torch-grad@cuda. "
    "The reference and the bound are the same on every device.",
)
@click.option(
    "--matmul-precision",
    type=click.Choice(["default", "highest", "tf32"]),
    default="default",
    show_default=True,
    help="GPU float32 products: each framework's own setting (TF32 where it allows it), "
    "highest (TF32 off in torch and JAX), or tf32 (TF32 allowed in both).",
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
    device,
    matmul_precision,
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
        device=device,
        matmul_precision=matmul_precision,
    )
    api.write_outputs(
        report, output_format, output, report_dir, save_baseline, json_detail, timings, detail
    )
    return report.exit_code


for command in (selftest, bench, backends, models):
    cli.add_command(command)


def main() -> None:
    """The console script. While a timed-out backend still runs in a thread, it skips the
    interpreter's shutdown (native code in that thread can abort it) and exits directly."""
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:
        code = 0
    timeouts = sys.modules.get("gradcmp.judging.timeouts")
    if timeouts is not None and any(t.is_alive() for t in timeouts.ABANDONED):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
