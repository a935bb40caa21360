"""What gradcmp's wrapping costs: each framework backend against the bare framework call.

The target (the performance issue): every framework backend within 1.1 × the bare framework call
of the same formulation at 1 M rows, with JIT compile time reported apart from run time.

    python benchmarks/framework_overhead.py [--rows 1000000] [--features 1] [--model linear]
        [--dtype float32,float64] [--repeat 7] [--seed 0] [--format table|json]
        [--backends torch-grad,jax-jit,…] [--torch-threads N]

What is timed, per dtype:

- gradcmp side: ``BACKENDS[name].compute(problem, dtype)``, wall time, exactly as
  ``runner._run_one`` calls and times it (no ``--timeout``, so no thread). For ``jax-jit`` the
  runner reports the backend's own ``run_seconds`` (the compiled call alone) and
  ``compile_seconds`` apart; both rows below use them: ``jax-jit`` is the reported run time, and
  ``jax-jit·wall`` is the whole ``compute`` minus its ``compile_seconds`` (what the call costs
  besides compiling: input conversion, tracing wrappers, results back to numpy).
- bare side: the same formulation written directly against the framework — the same arithmetic
  as the model's generic ``loss`` (``models/linear.py``: ``theta0 + X[:, 0] * theta1`` for one
  feature, ``X @ theta1`` for more; ``mean(r * r) / 2``), so the ratio measures wrapping, not a
  different kernel:

  ==============  =====================================================================
  gradcmp         bare
  ==============  =====================================================================
  torch-grad      ``torch.from_numpy`` inputs, fresh ``requires_grad`` leaves,
                  ``torch.autograd.grad(loss, params)``
  torch-backward  the same, ``loss.backward()`` and each ``.grad``
  torch-func      ``torch.func.grad_and_value(f)(params)``
  jax-grad        ``jnp.asarray`` inputs, eager ``jax.value_and_grad(f)(params)``
  jax-jit         ``jax.jit(jax.value_and_grad(f))`` compiled once in the warm-up; the call
                  on arrays already on the device, ``block_until_ready`` (like the runner's
                  ``run_seconds``)
  jax-jit·1st     (diagnostic, no target) the first call of a freshly compiled bare
                  executable, against the same ``run_seconds``
  jax-jit·wall    ``jnp.asarray`` inputs + the cached jitted call + results to numpy
  jax-fwd         ``jax.jacfwd(f, has_aux=True)`` returning the loss as its aux: loss and
                  gradient in one forward-mode pass
  numpy           the closed form of ``numpy_grad`` written out inline
  ==============  =====================================================================

  Compile: gradcmp's ``compile_seconds`` (``lower().compile()`` of a fresh ``jax.jit``, which
  its ``compute`` does on every call) against the bare ``lower().compile()`` of a fresh
  ``jax.jit`` of the bare function, timed in the same rounds.

Fairness: both sides start every repetition from the same numpy arrays — ``problem.inputs(dtype)``
(X, y already rounded to the dtype; gradcmp caches them per Problem, and the warm-up fills that
cache) and the parameters rounded to the dtype — and both end with the results as numpy arrays
on the host. So the conversion numpy → framework (``torch.from_numpy``: no copy;
``jnp.asarray``: a copy into XLA's buffer) and framework → numpy is inside both timings, except
for the ``jax-jit`` row, where neither side converts (the runner's ``run_seconds`` does not).
float64 JAX runs under ``jax.enable_x64(True)`` on both sides.

Every callable runs once as warm-up (first-call costs: functorch init, eager JAX op compiles);
then the repetitions are interleaved round-robin — each round runs every callable once, the
starting point rotating — so all share the machine's load. Within a round the order is every
gradcmp call, then every bare call in the same order (the bare-only jit extras right after bare
jax-jit, which compiles as gradcmp's jax-jit does), so that a gradcmp call and its bare twin
each follow the twins of the same other pair: neither side runs right after the other on the
same data with its caches warm (running the twins back to back made whichever ran second look
up to 1.9 × faster). ``gc`` is off inside each timed call.
Reported: the median per callable, and the ratio gradcmp / bare (target ≤ 1.1); also the ratio
of the fastest repetitions (``min ratio``), which load from other processes disturbs less.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable

import numpy as np

from gradcmp.backends import BACKENDS, missing_modules
from gradcmp.dtypes import parse_dtypes
from gradcmp.loading import data
from gradcmp.models import get_model
from gradcmp.params import Params
from gradcmp.problem import Problem

TARGET = 1.1
DIAGNOSTIC = ("jax-jit·1st",)
# torch warns (once) that gradcmp's read-only input arrays are not writable; the bare side
# shares the same arrays, and neither writes to them.
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


def build_problem(model_name: str, rows: int, features: int, seed: int) -> Problem:
    """A random dataset and parameters, made into a Problem the way ``gradcmp.compare`` does
    (``data.from_arrays``, the model's initial parameters, then the values set)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    model = get_model(model_name)
    if model_name == "linear":
        theta = {"theta0": rng.normal(), "theta1": rng.normal(size=features)}
        y = theta["theta0"] + X @ theta["theta1"] + rng.normal(size=rows)
        start = {"theta0": 0.5, "theta1": rng.normal(size=features)}
    elif model_name == "logistic":
        w, b = rng.normal(size=features), rng.normal()
        y = (rng.random(rows) < 1 / (1 + np.exp(-(b + X @ w)))).astype(np.float64)
        start = {"b": 0.25, "w": rng.normal(size=features)}
    else:
        raise SystemExit(f"--model {model_name}: only linear and logistic are benchmarked")
    dataset = data.from_arrays(X, y)
    if model.validate is not None:
        model.validate(dataset)
    params = Params.from_arrays(model.initial_params(dataset)).with_values(start)
    return Problem(model, dataset, params)


# --- the bare formulations ------------------------------------------------------------------


def bare_loss(model_name: str, mod, zero=None):
    """The model's loss written against ``mod`` (``torch`` or ``jax.numpy``) directly: the same
    arithmetic as ``models/linear.py`` / ``models/logistic.py``'s generic ``loss``."""
    if model_name == "linear":

        def loss(p, X, y):
            theta1 = p["theta1"]
            prediction = p["theta0"] + (X[:, 0] * theta1 if theta1.ndim == 0 else X @ theta1)
            residual = prediction - y
            return mod.mean(residual * residual) / 2

    else:

        def loss(p, X, y):
            z = p["b"] + X @ p["w"]
            return mod.mean(mod.logaddexp(zero if zero is not None else 0.0, z) - y * z)

    return loss


def bare_numpy(model_name: str):
    if model_name == "linear":

        def grad(p, X, y):
            theta0, theta1 = p["theta0"], p["theta1"]
            residual = theta0 + (X[:, 0] * theta1 if theta1.ndim == 0 else X @ theta1) - y
            inv_n = X.dtype.type(1) / X.dtype.type(len(y))
            grad1 = X.T @ residual * inv_n
            return residual @ residual * inv_n / 2, {
                "theta0": residual.sum() * inv_n,
                "theta1": grad1[0] if theta1.ndim == 0 else grad1,
            }

    else:

        def grad(p, X, y):
            z = p["b"] + X @ p["w"]
            inv_n = X.dtype.type(1) / X.dtype.type(len(y))
            with np.errstate(over="ignore"):
                sigma = np.where(z < 0, np.exp(z) / (1 + np.exp(z)), 1 / (1 + np.exp(-z)))
            dz = sigma - y
            loss = (np.logaddexp(X.dtype.type(0), z) - y * z).sum() * inv_n
            return loss, {"b": dz.sum() * inv_n, "w": X.T @ dz * inv_n}

    return grad


def bare_callables(model_name: str, problem: Problem, dtype) -> dict[str, Callable]:
    """name → a no-argument callable returning (loss, {name: grad}) — numpy values, except
    the run-only ``jax-jit`` (device arrays, ready) — plus ``jax-jit:compile`` returning
    (compile seconds, first-call seconds) of a freshly jitted bare function."""
    X_np, y_np = problem.inputs(dtype)
    p_np = problem.params.as_dtype(dtype)
    out: dict[str, Callable] = {}

    if "numpy" in BACKENDS and dtype.name in BACKENDS["numpy"].dtypes:
        grad = bare_numpy(model_name)
        out["numpy"] = lambda: grad(p_np, X_np, y_np)

    if not missing_modules(BACKENDS["torch-grad"]) and dtype.name != "bfloat16":
        import torch
        import torch.func

        zero = torch.zeros((), dtype=getattr(torch, dtype.name))
        t_loss = bare_loss(model_name, torch, zero)

        def torch_grad():
            X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
            params = {k: torch.from_numpy(v).requires_grad_() for k, v in p_np.items()}
            loss = t_loss(params, X, y)
            grads = torch.autograd.grad(loss, list(params.values()))
            return loss.detach().numpy(), {k: g.numpy() for k, g in zip(params, grads, strict=True)}

        def torch_backward():
            X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
            params = {k: torch.from_numpy(v).requires_grad_() for k, v in p_np.items()}
            loss = t_loss(params, X, y)
            loss.backward()
            return loss.detach().numpy(), {k: p.grad.numpy() for k, p in params.items()}

        def torch_func():
            X, y = torch.from_numpy(X_np), torch.from_numpy(y_np)
            params = {k: torch.from_numpy(v) for k, v in p_np.items()}
            grads, loss = torch.func.grad_and_value(lambda p: t_loss(p, X, y))(params)
            return loss.numpy(), {k: g.numpy() for k, g in grads.items()}

        out["torch-grad"] = torch_grad
        out["torch-backward"] = torch_backward
        out["torch-func"] = torch_func

    if not missing_modules(BACKENDS["jax-grad"]):
        import jax
        import jax.numpy as jnp

        x64 = dtype.name == "float64"
        j_loss = bare_loss(model_name, jnp)

        def scope():
            # float32 needs no context (x64 is off by default); float64 needs x64 on.
            return jax.enable_x64(True) if x64 else _nothing()

        def to_numpy(loss, grads):
            return np.asarray(loss), {k: np.asarray(g) for k, g in grads.items()}

        def device_inputs():
            params = {k: jnp.asarray(v) for k, v in p_np.items()}
            return params, jnp.asarray(X_np), jnp.asarray(y_np)

        def jax_grad():
            with scope():
                params, X, y = device_inputs()
                return to_numpy(*jax.value_and_grad(lambda p: j_loss(p, X, y))(params))

        def jax_fwd():
            with scope():
                params, X, y = device_inputs()

                def with_value(p):
                    value = j_loss(p, X, y)
                    return value, value

                grads, loss = jax.jacfwd(with_value, has_aux=True)(params)
                return to_numpy(loss, grads)

        jitted = jax.jit(jax.value_and_grad(j_loss))
        with scope():
            held = device_inputs()  # for the run-only row: arrays already on the device

        def jax_jit_run():
            with scope():
                return jax.block_until_ready(jitted(*held))

        def jax_jit_wall():
            with scope():
                return to_numpy(*jitted(*device_inputs()))

        def jax_jit_compile():
            """(compile seconds, seconds of the first call of the fresh executable)."""
            with scope():
                fresh = jax.jit(jax.value_and_grad(lambda p, X, y: j_loss(p, X, y)))
                start = time.perf_counter()
                compiled = fresh.lower(*held).compile()
                compile_seconds = time.perf_counter() - start
                start = time.perf_counter()
                jax.block_until_ready(compiled(*held))
                return compile_seconds, time.perf_counter() - start

        out["jax-grad"] = jax_grad
        out["jax-jit"] = jax_jit_run
        out["jax-jit·wall"] = jax_jit_wall
        out["jax-jit:compile"] = jax_jit_compile
        out["jax-fwd"] = jax_fwd
    return out


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


# --- timing ---------------------------------------------------------------------------------


def gradcmp_callable(name: str, problem: Problem, dtype) -> Callable:
    """The backend's compute as the runner calls it; returns (wall s, Output)."""
    backend = BACKENDS[name]

    def call():
        start = time.perf_counter()
        output = backend.compute(problem, dtype)
        return time.perf_counter() - start, output

    return call


def timed(function: Callable):
    gc.disable()
    try:
        start = time.perf_counter()
        value = function()
        seconds = time.perf_counter() - start
    finally:
        gc.enable()
    return seconds, value


def loss_of(value) -> float:
    """The loss a callable returned: gradcmp's (wall, Output), a bare (loss, grads) pair, or
    NaN for the bare compile callable's (compile seconds, first-call seconds)."""
    first, second = value
    if hasattr(second, "loss"):
        return float(np.asarray(second.loss))
    if isinstance(second, float):
        return float("nan")
    return float(np.asarray(first))


def measure(args) -> dict:
    problem = build_problem(args.model, args.rows, args.features, args.seed)
    dtypes = parse_dtypes(args.dtype)
    pairs = [
        "torch-grad",
        "torch-backward",
        "torch-func",
        "jax-grad",
        "jax-jit",
        "jax-fwd",
        "numpy",
    ]
    if args.backends:
        pairs = [p for p in pairs if p in args.backends.split(",")]
    rows = []
    for dtype in dtypes:
        problem.inputs(dtype)  # the runner's first backend fills this cache; not timed here
        bare = bare_callables(args.model, problem, dtype)
        callables: dict[str, Callable] = {}
        for name in pairs:
            backend = BACKENDS[name]
            if missing_modules(backend) or dtype.name not in backend.dtypes or name not in bare:
                continue  # not installed, or no bare twin in this dtype (torch bfloat16)
            BACKENDS[name].setup()  # the runner imports the framework apart (timings.setup)
            callables[f"gradcmp {name}"] = gradcmp_callable(name, problem, dtype)
            callables[f"bare {name}"] = bare[name]
            if name == "jax-jit":
                callables["bare jax-jit·wall"] = bare["jax-jit·wall"]
                callables["bare jax-jit:compile"] = bare["jax-jit:compile"]
        samples: dict[str, list] = {k: [] for k in callables}
        losses: dict[str, float] = {}
        for key, function in callables.items():  # warm-up, once each
            _, value = timed(function)
            losses[key] = loss_of(value)
        # All gradcmp calls, then all bare calls in the same order (the bare-only jit extras
        # right after bare jax-jit, as gradcmp's jax-jit also compiles): each gradcmp call and
        # its bare twin follow the twins of the same other pair, so neither side inherits the
        # other's warm caches. The start rotates by one each round.
        keys = sorted(callables, key=lambda k: k.startswith("bare"))  # stable: pair order
        for round_index in range(args.repeat):
            gc.collect()
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                samples[key].append(timed(callables[key]))
        rows.extend(summarise(pairs, dtype.name, samples, losses))
    return {
        "model": args.model,
        "rows": args.rows,
        "features": args.features,
        "seed": args.seed,
        "repeat": args.repeat,
        "target": TARGET,
        "environment": environment(),
        "results": rows,
    }


def summarise(pairs, dtype: str, samples: dict, losses: dict) -> list[dict]:
    def ms(values):
        return 1000 * statistics.median(values)

    out = []
    for name in pairs:
        key = f"gradcmp {name}"
        if key not in samples:
            continue
        walls = [wall for wall, _ in samples[key]]  # perf_counter around compute(), as runner
        outputs = [value[1] for _, value in samples[key]]
        rows = [(name, walls, samples[f"bare {name}"])]
        compile_g = compile_b = None
        if name == "jax-jit":
            run = [o.run_seconds for o in outputs]
            compiles = [o.compile_seconds for o in outputs]
            less_compile = [w - c for w, c in zip(walls, compiles, strict=True)]
            fresh = samples["bare jax-jit:compile"]
            first_calls = [(first, None) for _, (_, first) in fresh]
            rows = [
                (name, run, samples[f"bare {name}"]),
                ("jax-jit·1st", run, first_calls),
                ("jax-jit·wall", less_compile, samples["bare jax-jit·wall"]),
            ]
            compile_g = ms(compiles)
            compile_b = ms([compile_seconds for _, (compile_seconds, _) in fresh])
        for label, gradcmp_s, bare_samples in rows:
            bare_s = [seconds for seconds, _ in bare_samples]
            g, b = ms(gradcmp_s), ms(bare_s)
            gradcmp_loss = losses[key]
            bare_loss_value = losses.get(f"bare {label}", losses[f"bare {name}"])
            same = abs(gradcmp_loss - bare_loss_value) <= 1e-3 * max(abs(gradcmp_loss), 1e-30)
            out.append(
                {
                    "backend": label,
                    "dtype": dtype,
                    "gradcmp_ms": g,
                    "bare_ms": b,
                    "ratio": g / b,
                    # jax-jit·1st explains a result; it is not a backend held to the target
                    "met": None if label in DIAGNOSTIC else g / b <= TARGET,
                    "gradcmp_min_ms": 1000 * min(gradcmp_s),
                    "bare_min_ms": 1000 * min(bare_s),
                    "min_ratio": min(gradcmp_s) / min(bare_s),
                    "compile_gradcmp_ms": compile_g,
                    "compile_bare_ms": compile_b,
                    "gradcmp_wall_ms": ms(walls) if name == "jax-jit" else g,
                    "same_loss": bool(same),
                }
            )
    return out


def environment() -> dict:
    env = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    try:
        import jax

        env["jax"] = jax.__version__
    except ImportError:
        pass
    return env


def render_table(report: dict) -> str:
    head = (
        f"{report['model']}: {report['rows']:,} rows × {report['features']} feature(s), "
        f"seed {report['seed']}, median of {report['repeat']} interleaved repetitions"
    )
    env = ", ".join(f"{k} {v}" for k, v in report["environment"].items())
    columns = (
        f"{'backend':15} {'dtype':8} {'gradcmp ms':>10} {'bare ms':>9} {'ratio':>6} "
        f"{'target':>7} {'met?':>4} {'min ratio':>9}  {'compile ms (gradcmp / bare)':>27}"
    )
    lines = [head, env, "", columns, "─" * len(columns)]
    for r in report["results"]:
        target = "—" if r["met"] is None else f"≤ {report['target']}"
        met = "—" if r["met"] is None else "yes" if r["met"] else "NO"
        compile_text = ""
        if r["compile_gradcmp_ms"] is not None:
            compile_text = f"{r['compile_gradcmp_ms']:.1f} / {r['compile_bare_ms']:.1f}"
        lines.append(
            f"{r['backend']:15} {r['dtype']:8} {r['gradcmp_ms']:10.2f} {r['bare_ms']:9.2f} "
            f"{r['ratio']:6.2f} {target:>7} {met:>4} {r['min_ratio']:9.2f}  {compile_text:>27}"
            + ("" if r["same_loss"] else "   (loss differs from the bare call!)")
        )
    lines += [
        "",
        "jax-jit       the compiled call as the runner reports it (run_seconds) / the bare",
        "              jitted call, warm, on arrays already on the device",
        "jax-jit·1st   the same run_seconds / the bare FIRST call of a freshly compiled",
        "              executable (diagnostic: gradcmp times the first call after compiling)",
        "jax-jit·wall  the whole compute() minus its compile_seconds / jnp.asarray inputs +",
        "              the warm jitted call + results to numpy",
        "compile       gradcmp's compile_seconds (its compute() compiles on every call) / a",
        "              fresh jax.jit(...).lower().compile() of the bare function",
        "min ratio     fastest gradcmp / fastest bare (less disturbed by other load)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="linear", choices=["linear", "logistic"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=1)
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="", help="comma-separated subset (default: all)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=None,
        help="torch.set_num_threads for both sides (default: torch's own; on a loaded machine "
        "fewer threads make torch's timings far steadier)",
    )
    parser.add_argument("--format", default="table", choices=["table", "json"])
    args = parser.parse_args()
    if args.repeat < 1 or args.rows < 1 or args.features < 1:
        parser.error("--repeat, --rows and --features must be positive")
    if args.torch_threads is not None:
        import torch

        torch.set_num_threads(args.torch_threads)
    report = measure(args)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))


if __name__ == "__main__":
    main()
