"""What gradcmp adds per DDP gradient on a rank, over the engine's own forward+backward.

The target (the distributed issue): at 10⁵ rows, gradcmp's time for one `torch-ddp` gradient on
a rank within 1.2 × the bare DDP forward+backward a user writes on the same rows, same world.

One world of N ranks (spawned: `python THIS --rank R N PORT OPTIONS`, OMP_NUM_THREADS=1 as
gradcmp's ranks, gloo on 127.0.0.1) measures both sides in the same processes, side by side.
Every rank builds the same seeded data as `gradcmp bench` (`bench.make_problem`: linear model,
θ = (0.5, 0.25)) and takes its contiguous shard (`shards.Shards`, weighted for a mean).

- gradcmp: `torch_engines.engine_step("torch-ddp", problem, dtype, start, stop, weight, N)`,
  the whole call, wall time: all gradcmp does per gradient on a rank — inputs handed to torch,
  the holder module built, the unused-parameter probe, DDP wrapped around it, the scaled
  forward+backward (the engine's own `seconds`, reported too), gradients to numpy, the loss
  all-reduced.
- bare: the same formulation a user writes — an `nn.Module` with parameters theta0, theta1 and
  `mean((theta0 + X[:, 0]·theta1 − y)²)/2` (the model's generic loss), wrapped in DDP once,
  then per gradient `loss = ddp(X, y); loss.backward()` (grads set to None before, untimed).
- diagnostic: bare one-shot — what a user pays for one gradient from nothing: build the module,
  wrap it in DDP, forward+backward, gradients to numpy.
- diagnostic: prototype — ``proposed_step`` below: gradcmp's engine_step with the changes this
  benchmark's report suggests, to measure their gain before anyone makes them: its whole call,
  its set-up (module, DDP) and its per-gradient part apart.

Rounds are interleaved — each round every callable once, the order alternating — after 2 untimed
warm-up rounds (the first DDP construction in a process imports torch._dynamo). Each call starts
after a barrier; a repetition's time is the slowest rank's (the ranks meet in the all-reduce
anyway). gc is off inside each timed call. Then a breakdown of gradcmp's call, in separate
instrumented rounds: the time inside each step it takes (the rest is "other").

    python benchmarks/distributed_overhead.py [--rows 100000] [--world-sizes 2,4]
        [--dtype float32,float64] [--repeat 21] [--format table|json]

Measured on 2 shared cores (2026-12-02, 61 repetitions, load ≈ 2), world of 2 (50,000 rows per
rank), after engine_step took its set-up apart: per gradient 2.40 ms (float32) / 3.14 ms
(float64) against bare 1.82 / 2.81 ms — median ratios 1.32 / 1.12, best-of ratios 1.05 / 1.23;
an earlier run of 21 gave 1.06 / 0.82 (best-of 1.07 / 1.05). At the millisecond scale the
spread between runs on this machine is larger than the overhead. The whole call with its set-up
(the module, DDP's constructor and its rank sync) is 2.6–3.0 × a bare step, 1.3 × a user's
one-shot gradient. A world of 4 on 2 cores is oversubscribed (every rank waits for a
descheduled peer): 1.29–1.36.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

TARGET = 1.2
WARMUP = 2
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")


# --- in each rank ---------------------------------------------------------------------------------


def bare_module(dtype, theta0: float, theta1: float):
    import torch
    import torch.nn as nn

    class Linear(nn.Module):
        def __init__(self):
            super().__init__()
            self.theta0 = nn.Parameter(torch.tensor(theta0, dtype=dtype))
            self.theta1 = nn.Parameter(torch.tensor(theta1, dtype=dtype))

        def forward(self, X, y):
            residual = self.theta0 + X[:, 0] * self.theta1 - y
            return torch.mean(residual * residual) / 2

    return Linear()


def timed(call) -> float:
    gc.disable()
    try:
        start = time.perf_counter()
        call()
        return time.perf_counter() - start
    finally:
        gc.enable()


class Breakdown:
    """Wall seconds inside the steps of gradcmp's call, by wrapping what it calls."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.on = False
        self._undo = []

    def wrap(self, owner, attr: str, label: str) -> None:
        if owner is None or not hasattr(owner, attr):
            return
        original = getattr(owner, attr)
        raw = owner.__dict__.get(attr) if isinstance(owner, type) else None

        @functools.wraps(original)
        def inner(*args, **kwargs):
            if not self.on:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(owner, attr, staticmethod(inner) if isinstance(raw, staticmethod) else inner)
        self._undo.append((owner, attr, raw if raw is not None else original))

    def undo(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)


def rank_main(rank: int, world_size: int, port: int, options: dict) -> None:
    import torch
    import torch.distributed as dist

    from gradcmp.bench import make_problem
    from gradcmp.distributed.shards import Shards

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    problem = make_problem(options["rows"])
    shards = Shards.split(problem.data.rows, world_size)
    report = {"world_size": world_size, "rows": problem.data.rows, "shards": shards.sizes}
    report["dtypes"] = {
        name: measure_dtype(problem, shards, rank, name, options["repeat"])
        for name in options["dtypes"]
    }
    dist.barrier()
    if rank == 0:
        with open(options["out"], "w") as f:
            json.dump(report, f)
    dist.destroy_process_group()


def measure_dtype(problem, shards, rank: int, name: str, repeat: int) -> dict:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from gradcmp.backends import _torch
    from gradcmp.distributed import torch_engines
    from gradcmp.distributed.shards import MEAN
    from gradcmp.dtypes import DTYPES

    world_size = len(shards.bounds)
    start, stop = shards.bounds[rank]
    weight = shards.weight(rank, MEAN)
    theta0 = float(problem.params.values["theta0"])
    theta1 = float(problem.params.values["theta1"])
    dtype = DTYPES[name]
    X_np, y_np = problem.inputs(dtype)
    X, y = torch.from_numpy(X_np[start:stop]), torch.from_numpy(y_np[start:stop])
    model = bare_module(X.dtype, theta0, theta1)
    ddp = DistributedDataParallel(model)
    engine_seconds = []
    proposed = {"set-up": [], "gradient": []}

    def gradcmp_call():
        if hasattr(torch_engines, "engine_step"):
            out = torch_engines.engine_step(
                "torch-ddp", problem, dtype, start, stop, weight, world_size
            )
        else:  # the signature before the launched (torchrun) worlds
            out = torch_engines._engine_step("torch-ddp", problem, dtype, shards, rank, MEAN)
        engine_seconds.append(out["seconds"])

    def proposed_call():
        out = proposed_step(problem, dtype, start, stop, weight, world_size)
        proposed["set-up"].append(out["setup"])
        proposed["gradient"].append(out["gradient"])

    def bare_call():
        ddp(X, y).backward()

    def one_shot():
        once = DistributedDataParallel(bare_module(X.dtype, theta0, theta1))
        once(X, y).backward()
        return [p.grad.detach().to(torch.float64).numpy() for p in once.module.parameters()]

    calls = {
        "gradcmp": gradcmp_call,
        "bare": bare_call,
        "bare one-shot": one_shot,
        "prototype": proposed_call,
    }
    times: dict[str, list[float]] = {k: [] for k in calls}
    for round_ in range(WARMUP + repeat):
        order = list(calls) if round_ % 2 == 0 else list(reversed(calls))
        for key in order:
            model.zero_grad(set_to_none=True)
            dist.barrier()
            seconds = timed(calls[key])
            if round_ >= WARMUP:
                times[key].append(seconds)
    # The slowest rank's time, per repetition.
    keys = list(times)
    inside = {
        "engine seconds (inside gradcmp)": engine_seconds[WARMUP:],
        "prototype set-up": proposed["set-up"][WARMUP:],
        "prototype per gradient": proposed["gradient"][WARMUP:],
    }
    keys = [*keys, *inside]
    table = torch.tensor([times[k] if k in times else inside[k] for k in keys])
    dist.all_reduce(table, op=dist.ReduceOp.MAX)
    slowest = {k: table[i].tolist() for i, k in enumerate(keys)}

    # Where gradcmp's call spends its time: instrumented rounds, apart.
    parts = Breakdown()
    parts.wrap(_torch, "torch_inputs", "inputs to torch")
    parts.wrap(_torch, "torch_loss", "the loss function")
    parts.wrap(getattr(torch_engines, "_Holder", None), "build", "holder module")
    parts.wrap(torch_engines, "_has_unused", "unused-parameter probe")
    parts.wrap(DistributedDataParallel, "__init__", "DDP(...) construction")
    parts.wrap(_torch, "to_numpy", "gradients to numpy")
    parts.wrap(dist, "all_reduce", "loss all-reduce")
    engine_seconds.clear()
    totals = []
    parts.on = True
    for _ in range(repeat):
        dist.barrier()
        totals.append(timed(gradcmp_call))
    parts.on = False
    parts.undo()
    breakdown = {k: v / repeat for k, v in parts.seconds.items()}
    breakdown["forward+backward (engine seconds)"] = statistics.mean(engine_seconds)
    breakdown["other"] = statistics.mean(totals) - sum(breakdown.values())
    breakdown["total"] = statistics.mean(totals)
    return {"seconds": slowest, "breakdown_rank": breakdown}


def proposed_step(problem, dtype, start: int, stop: int, weight, world_size: int) -> dict:
    """torch_engines.engine_step for a built-in model (every parameter used) with the suggested
    changes, its set-up and its gradient timed apart (as JAX's compile and call are):

    - set-up: the holder module and DDP's constructor, as now — its init sync (a shape
      all-gather and a broadcast from rank 0) also lines the ranks up, so the step after it
      does not wait for a slower peer's set-up (with ``init_sync=False`` that wait moves into
      the step) —, and no unused-parameter probe (a built-in model uses every parameter; a
      loss file's would still be probed). No warm-up step: DDP's first step costs about what
      a later one does, while its second rebuilds the buckets and is slower;
    - per gradient: the scaled forward+backward of the rank's rows, gradients to numpy; no
      loss all-reduce (each rank sends its weighted loss, the parent adds the N of them)."""
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from gradcmp.backends._torch import to_numpy, torch_inputs, torch_loss
    from gradcmp.distributed import torch_engines

    began = time.perf_counter()
    params, X, y = torch_inputs(problem, dtype, leaves=False)
    loss_fn, side = torch_loss(problem)
    module, shapes = torch_engines._Holder.build(params, loss_fn, flat_scalars=False)
    wrapped = DistributedDataParallel(module)
    setup = time.perf_counter() - began
    empty = stop == start
    rows = slice(0, 1) if empty else slice(start, stop)
    scale = 0 if empty else weight * world_size
    began = time.perf_counter()
    with torch.enable_grad():
        local = wrapped(X[rows], y[rows])
        (local if scale == 1 else local * float(scale)).backward()
    seconds = time.perf_counter() - began
    grads = {n: to_numpy(p.grad.reshape(k)) for (n, k), p in zip(shapes.items(), module.values)}
    gradient = time.perf_counter() - began
    share = float(local.detach()) * (0.0 if empty else float(weight))
    return {
        "loss_share": share,
        "ranks": [grads],
        "seconds": seconds,
        "side": side,
        "setup": setup,
        "gradient": gradient,
    }


# --- the launcher ---------------------------------------------------------------------------------


def run_world(world_size: int, options: dict) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="gradcmp-overhead-") as directory:
        options = {**options, "out": os.path.join(directory, "report.json")}
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        argv = [sys.executable, __file__, "--rank"]
        ranks = [
            subprocess.Popen(
                [*argv, str(r), str(world_size), str(port), json.dumps(options)],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            for r in range(world_size)
        ]
        codes = [p.wait() for p in ranks]
        if any(codes):
            sys.exit(f"distributed_overhead.py: error: a rank exited with {codes}")
        with open(options["out"]) as f:
            return json.load(f)


def environment() -> dict:
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def summarize(reports: list[dict]) -> list[dict]:
    rows = []
    for report in reports:
        for dtype, part in report["dtypes"].items():
            s = part["seconds"]
            med = {k: statistics.median(v) for k, v in s.items()}
            rows.append(
                {
                    "world_size": report["world_size"],
                    "dtype": dtype,
                    "rows": report["rows"],
                    "rows_per_rank": max(report["shards"]),
                    "median_s": med,
                    "min_s": {k: min(v) for k, v in s.items()},
                    # The target: gradcmp's per-gradient time (engine_step's own ``seconds``:
                    # the scaled forward+backward and the gradients to numpy; the module and
                    # DDP's wrapping are its set-up, reported apart like JAX's compile).
                    "ratio": med["engine seconds (inside gradcmp)"] / med["bare"],
                    "min_ratio": min(s["engine seconds (inside gradcmp)"]) / min(s["bare"]),
                    "ratio_whole": med["gradcmp"] / med["bare"],
                    "ratio_one_shot": med["gradcmp"] / med["bare one-shot"],
                    "ratio_prototype": med["prototype per gradient"] / med["bare"],
                    "met": med["engine seconds (inside gradcmp)"] / med["bare"] <= TARGET,
                    "breakdown_rank0_mean_s": part["breakdown_rank"],
                }
            )
    return rows


def _ms(s: float) -> str:
    return f"{s * 1e3:.3f}"


COLUMNS = (  # (heading, width, cell)
    ("world", 5, lambda r: f"{r['world_size']}"),
    ("dtype", 8, lambda r: r["dtype"]),
    ("rows/rank", 9, lambda r: f"{r['rows_per_rank']:,}"),
    ("gradcmp", 8, lambda r: _ms(r["median_s"]["gradcmp"])),
    ("(engine)", 8, lambda r: _ms(r["median_s"]["engine seconds (inside gradcmp)"])),
    ("bare", 8, lambda r: _ms(r["median_s"]["bare"])),
    ("one-shot", 8, lambda r: _ms(r["median_s"]["bare one-shot"])),
    ("proto", 8, lambda r: _ms(r["median_s"]["prototype"])),
    ("set-up", 8, lambda r: _ms(r["median_s"]["prototype set-up"])),
    ("gradient", 8, lambda r: _ms(r["median_s"]["prototype per gradient"])),
    ("ratio", 5, lambda r: f"{r['ratio']:.2f}"),
    ("whole/bare", 10, lambda r: f"{r['ratio_whole']:.2f}"),
    ("min ratio", 9, lambda r: f"{r['min_ratio']:.2f}"),
    ("vs 1-shot", 9, lambda r: f"{r['ratio_one_shot']:.2f}"),
    ("grad/bare", 9, lambda r: f"{r['ratio_prototype']:.2f}"),
    ("target", 0, lambda r: f"≤ {TARGET}: {'met' if r['met'] else 'NOT met'}"),
)


def render(rows: list[dict], env: dict, repeat: int) -> str:
    lines = [
        f"Python {env['python']} · torch {env['torch']} · {env['cpus']} CPUs "
        f"({env['cpus_usable']} usable) · load {' '.join(map(str, env['load_average']))} · "
        f"{env['date']}",
        f"{repeat} interleaved repetitions (+{WARMUP} warm-up) per world and dtype; a "
        "repetition = the slowest rank; milliseconds, medians",
        "",
        "  ".join(h.rjust(w) if i != 1 else h.ljust(w) for i, (h, w, _) in enumerate(COLUMNS)),
    ]
    for r in rows:
        cells = [cell(r) for _, _, cell in COLUMNS]
        widths = [w for _, w, _ in COLUMNS]
        lines.append(
            "  ".join(
                c.rjust(w) if i != 1 else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
            )
        )
    lines += [
        "",
        "gradcmp = torch_engines.engine_step, the whole call (set-up included); (engine) = its "
        "per-gradient seconds (scaled forward+backward, gradients to numpy); ratio = (engine) / "
        "bare, the target; whole/bare = gradcmp / bare; bare = DDP forward+backward on a DDP "
        "built once; one-shot = "
        "build module + DDP + forward+backward + grads to numpy; proto = engine_step with the "
        "suggested changes (proposed_step: no probe, no loss all-reduce), its set-up and its "
        "per-gradient part (forward+backward, grads to numpy) apart; grad/bare = the "
        "prototype's per-gradient part / bare",
        "",
        "where gradcmp's call goes (rank 0, mean of instrumented calls, ms):",
    ]
    for r in rows:
        parts = r["breakdown_rank0_mean_s"]
        text = ", ".join(f"{k} {v * 1e3:.3f}" for k, v in parts.items())
        lines.append(f"  N={r['world_size']} {r['dtype']}: {text}")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--rank"]:
        rank, world_size, port = map(int, sys.argv[2:5])
        rank_main(rank, world_size, port, json.loads(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, default=1e5)
    parser.add_argument("--world-sizes", default="2,4")
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    sizes = [int(n) for n in args.world_sizes.split(",")]
    dtypes = [d.strip() for d in args.dtype.split(",")]
    if args.repeat < 1 or args.rows < 1 or any(n < 1 for n in sizes):
        parser.error("--repeat, --rows and every world size must be ≥ 1")
    options = {"rows": int(args.rows), "dtypes": dtypes, "repeat": args.repeat}
    reports = [run_world(n, options) for n in sizes]
    rows = summarize(reports)
    env = environment()
    if args.format == "json":
        print(json.dumps({"environment": env, "repeat": args.repeat, "results": rows}, indent=2))
    else:
        print(render(rows, env, args.repeat))


if __name__ == "__main__":
    main()
