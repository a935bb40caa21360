"""A whole `gradcmp run -b torch-ddp:4` against a bare spawn of a 4-process gloo world.

The target (the distributed issue): `gradcmp run --data data/xy.csv -b torch-ddp:4` (default
dtypes float32,float64), a fresh process as a person runs it, within 1.3 × a bare spawn of 4
processes that import torch, join a gloo group on 127.0.0.1 and all-reduce one tensor.

Timed side by side — interleaved round-robin, one round = every command once, the order rotated
each round — so every command sees the same load (this is meant for shared machines):

- `gradcmp run …-b torch-ddp:4` (must exit 0: every rank agrees);
- bare spawn: a launcher (`python THIS --bare-world 4`) that picks a free port and spawns 4
  `python THIS --bare-rank R 4 PORT`, each with OMP_NUM_THREADS=1 as gradcmp's ranks: `import
  torch`, `init_process_group("gloo", "tcp://127.0.0.1:PORT")`, `all_reduce` of one tensor,
  `destroy_process_group`; the launcher waits for all four;
- diagnostic, no target: the same bare spawn where each rank also wraps a 2-parameter module in
  `DistributedDataParallel` and runs one forward+backward on its rows — the floor any DDP
  program pays (DDP's constructor imports torch._dynamo);
- diagnostic: `gradcmp run … -b native`, gradcmp's own start-up without a world;
- with `--prototypes`, diagnostic: gradcmp's own ranks on gradcmp's own job, forked from one
  "zygote" process that imported torch once (``proto_world``): the change suggested for
  world.py/rank.py, timed before anyone makes it.

Per command: the median wall time and the median CPU time (user+sys of the command and every
process it waited for: RUSAGE_CHILDREN), which load from other processes disturbs far less
than the wall time. Ratio = median wall of gradcmp / median wall of the bare spawn.

`--phases` adds one traced run of each world command: a sitecustomize put on PYTHONPATH (so in
the parent and in every rank) records, in absolute time, when each process started, its imports
of torch / torch._dynamo / jax and gradcmp, and the calls that make up a world (World.__init__
and wait, the reference, init_process_group, the rank's problem, the reduction check, each
engine step, DDP's constructor, destroy_process_group) with their wall and CPU seconds — the
timeline of where the time goes.

    python benchmarks/distributed_startup.py [--repeat 5] [--warmup 1] [--world-size 4]
        [--phases] [--prototypes] [--format table|json]

Measured on 2 shared cores (2026-12-02, quiet: load ≈ 1.5 at the start; 9 rounds): gradcmp
7.62 s, bare spawn 4.99 s — 1.53 × (CPU 1.64 ×): the target is not met. The gap is DDP's
constructor importing torch._dynamo in every rank (≈ 1.6 s CPU each; bare + DDP: 9.54 s);
the zygote prototype: 3.68 s (0.74 ×).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "xy.csv"
TARGET = 1.3
GRADCMP = "gradcmp run -b torch-ddp:{n}"
BARE = "bare spawn: {n} × (import torch, gloo, all_reduce)"
BARE_DDP = "bare spawn + DDP step (diagnostic)"
NATIVE = "gradcmp run -b native (diagnostic)"
PROTO_ZYGOTE = "prototype: one zygote imports torch, forks the ranks"


# --- the bare world ---------------------------------------------------------------------------


def bare_rank(rank: int, world_size: int, port: int, ddp: bool) -> None:
    import torch
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    t = torch.ones(1)
    dist.all_reduce(t)
    if ddp:  # what any DDP program adds: the wrapper (its imports, a broadcast), one step
        from torch.nn.parallel import DistributedDataParallel

        x = torch.arange(1.0, 7.0, dtype=torch.float64)[rank::world_size, None]
        y = torch.tensor([13.0, 14, 20, 21, 25, 30], dtype=torch.float64)[rank::world_size]
        model = DistributedDataParallel(torch.nn.Linear(1, 1, dtype=torch.float64))
        ((model(x)[:, 0] - y) ** 2).mean().div(2).backward()
    dist.destroy_process_group()


def bare_world(world_size: int, ddp: bool) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = ["--ddp"] if ddp else []
    ranks = [
        subprocess.Popen(
            [sys.executable, __file__, "--bare-rank", str(r), str(world_size), str(port), *extra],
            env=env,
            stdin=subprocess.DEVNULL,
        )
        for r in range(world_size)
    ]
    return max(p.wait() for p in ranks)


# --- prototypes of the suggested changes (diagnostic) ---------------------------------------------
#
# gradcmp's own rank code (gradcmp.distributed.rank.main) on gradcmp's own job, launched the way
# the suggested change to world.py / rank.py would: what it would give, before anyone makes it.
# (Its ranks' results are bit for bit those of spawned ranks: checked by hand, 2026-12-02.)


def proto_world(world_size: int) -> int:
    """Build the job ``gradcmp run -b torch-ddp:N`` builds (Distributed.start's) and run its
    ranks from a zygote: one spawned process imports torch (and what DDP's constructor
    imports, torch._dynamo) once and forks the N ranks, each of which runs gradcmp's rank
    ``main`` and ends with os._exit. Exit code 0 when every rank sent its result."""
    import pickle
    import shutil

    from gradcmp.distributed import world
    from gradcmp.loading import data
    from gradcmp.models import get_model
    from gradcmp.params import Params
    from gradcmp.problem import Problem

    model = get_model("linear")
    dataset = data.load(DATA)
    problem = Problem(model, dataset, Params.from_arrays(model.initial_params(dataset)))
    job = {
        "engine": "torch-ddp",
        "world_size": world_size,
        "dtypes": ["float32", "float64"],
        "recipe": problem.model.recipe,
        "model": problem.model.name,
        "data": problem.data,
        "params": problem.params,
        "timeout": None,
    }
    directory = tempfile.mkdtemp(prefix="gradcmp-proto-")
    try:
        with open(os.path.join(directory, world.JOB_FILE), "wb") as f:
            pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        argv = [sys.executable, str(Path(__file__).resolve()), "--zygote", directory]
        code = subprocess.run(
            [*argv, str(world_size)], env=env, stdin=subprocess.DEVNULL, start_new_session=True
        ).returncode
        sent = all(os.path.exists(world.result_file(directory, r)) for r in range(world_size))
        return 0 if sent and not code else 1
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def rank_os_exit(argv: list[str]) -> None:
    """gradcmp's rank, ended by os._exit (as gradcmp's own rank ends: no finalization)."""
    from gradcmp.distributed.rank import main as rank_main

    sys.stdout = sys.stderr
    code = 1
    try:
        code = rank_main(argv)
    finally:
        sys.stderr.flush()
        os._exit(code)


def zygote(directory: str, world_size: int) -> None:
    """Import once what every rank imports (one thread: nothing runs yet), then fork the ranks."""
    import array_api_compat.torch  # noqa: F401
    import torch  # noqa: F401
    import torch._dynamo  # noqa: F401  (DDP's constructor imports it)
    import torch.distributed  # noqa: F401
    from torch.nn.parallel import DistributedDataParallel  # noqa: F401

    from gradcmp.backends import _torch  # noqa: F401
    from gradcmp.distributed import rank, torch_engines  # noqa: F401
    from gradcmp.models import get_model  # noqa: F401

    me = str(os.getpid())
    children = []
    for r in range(world_size):
        pid = os.fork()
        if pid == 0:
            rank_os_exit([directory, str(r), me])
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    sys.stdout.flush()
    os._exit(1 if any(codes) else 0)


# --- timing -------------------------------------------------------------------------------------


class Command:
    def __init__(self, name: str, argv: list[str], diagnostic: bool = False):
        self.name, self.argv, self.diagnostic = name, argv, diagnostic
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, env: dict | None = None) -> tuple[float, float]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            self.argv,
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
            sys.exit(
                f"distributed_startup.py: error: `{shlex.join(self.argv)}` exited "
                f"{done.returncode}; the timings would mean nothing. Its last output:\n{tail}"
            )
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return wall, cpu


def gradcmp_entry_point() -> str:
    path = Path(sys.executable).parent / "gradcmp"
    if not path.is_file():
        sys.exit(f"distributed_startup.py: error: no gradcmp beside {sys.executable}")
    return str(path)


def commands(world_size: int, prototypes: bool) -> list[Command]:
    gradcmp, py, me = gradcmp_entry_point(), sys.executable, str(Path(__file__).resolve())
    run = [gradcmp, "run", "--data", str(DATA)]
    return [
        Command(GRADCMP.format(n=world_size), [*run, "-b", f"torch-ddp:{world_size}"]),
        Command(BARE.format(n=world_size), [py, me, "--bare-world", str(world_size)]),
        Command(BARE_DDP, [py, me, "--bare-world", str(world_size), "--ddp"], diagnostic=True),
        Command(NATIVE, [*run, "-b", "native"], diagnostic=True),
        *(
            [
                Command(PROTO_ZYGOTE, [py, me, "--proto-world", str(world_size)], True),
            ]
            if prototypes
            else []
        ),
    ]


def measure(cmds: list[Command], repeat: int, warmup: int) -> None:
    for _ in range(warmup):  # page cache: not what the timed rounds should see
        for cmd in cmds:
            cmd.run()
    for r in range(repeat):
        shift = r % len(cmds)
        for cmd in cmds[shift:] + cmds[:shift]:
            wall, cpu = cmd.run()
            cmd.wall.append(wall)
            cmd.cpu.append(cpu)


# --- phases: a sitecustomize that traces every process of one run -------------------------------

TRACER = r'''
import atexit, functools, importlib.abc, json, os, sys, time

_DIR = os.environ.get("GRADCMP_PHASES_DIR")
if _DIR:
    def _started():
        """This process's start (absolute): its age from /proc (10 ms resolution)."""
        try:
            with open("/proc/self/stat") as f:
                ticks = int(f.read().rsplit(")", 1)[1].split()[19])
            age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
            return time.time() - age
        except (OSError, ValueError, AttributeError):
            return time.time()

    _argv = list(getattr(sys, "orig_argv", sys.argv))
    if "gradcmp.distributed.rank" in _argv:
        _role = "rank " + _argv[_argv.index("gradcmp.distributed.rank") + 2]
    elif "--bare-rank" in _argv:
        _role = "bare rank " + _argv[_argv.index("--bare-rank") + 1]
    elif "--bare-world" in _argv:
        _role = "bare launcher"
    elif "--zygote" in _argv:
        _role = "zygote"
    else:
        _role = "parent"
    _record = {"role": _role, "pid": os.getpid(), "started": _started(), "site": time.time(),
               "events": []}
    _depth = [0]

    def _event(name, wall0, cpu0, depth):
        _record["events"].append({"name": name, "start": wall0, "end": time.time(),
                                  "cpu": time.process_time() - cpu0, "depth": depth})

    def _timed(name, f):
        @functools.wraps(f)
        def timed(*args, **kwargs):
            wall0, cpu0, depth = time.time(), time.process_time(), _depth[0]
            _depth[0] += 1
            try:
                return f(*args, **kwargs)
            finally:
                _depth[0] -= 1
                label = name
                if name.startswith("engine step") and len(args) > 2:
                    label = f"{name} {getattr(args[2], 'name', '')}"
                _event(label, wall0, cpu0, depth)
        return timed

    _IMPORTS = {"torch": "import torch", "torch._dynamo": "import torch._dynamo",
                "jax": "import jax", "gradcmp.cli": "import gradcmp.cli",
                "gradcmp.distributed.rank": "import gradcmp.distributed.rank"}
    _PATCH = {
        "gradcmp.distributed.world": [("World.__init__", "spawn the world"),
                                      ("World.wait", "wait for the world")],
        "gradcmp.reference.compute": [("compute_reference", "reference")],
        "gradcmp.distributed.rank": [("rebuild_problem", "rebuild the problem")],
        "gradcmp.distributed.torch_engines": [
            ("_store", "rendezvous (TCPStore)"), ("_reduction", "reduction check"),
            ("engine_step", "engine step"), ("_engine_step", "engine step"),
            ("_has_unused", "unused-parameter probe"), ("_user_step", "user step")],
        "gradcmp.distributed.jax_engines": [("_reduction", "reduction check"),
                                            ("_step", "engine step")],
        "torch.distributed.distributed_c10d": [
            ("init_process_group", "init_process_group"),
            ("destroy_process_group", "destroy_process_group")],
        "torch.nn.parallel.distributed": [("DistributedDataParallel.__init__", "DDP(...)")],
    }

    def _patch(module, names):
        for path, label in names:
            owner, *rest = path.split(".")
            target = module if not rest else getattr(module, owner, None)
            attr = rest[0] if rest else owner
            if target is not None and hasattr(target, attr):
                setattr(target, attr, _timed(label, getattr(target, attr)))

    class _Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname not in _IMPORTS and fullname not in _PATCH:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
            else:
                return None
            original = spec.loader.exec_module

            def exec_module(module):
                wall0, cpu0, depth = time.time(), time.process_time(), _depth[0]
                _depth[0] += 1
                try:
                    original(module)
                finally:
                    _depth[0] -= 1
                    if fullname in _IMPORTS:
                        _event(_IMPORTS[fullname], wall0, cpu0, depth)
                if fullname in _PATCH:
                    _patch(module, _PATCH[fullname])

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Finder())

    @atexit.register
    def _write():
        _record["exit"] = time.time()
        _record["cpu"] = time.process_time() - _record.get("cpu_at_fork", 0.0)
        with open(os.path.join(_DIR, f"{os.getpid()}.json"), "w") as f:
            json.dump(_record, f)

    _real_exit = os._exit

    def _exit(code):  # a process ended by os._exit runs no atexit: write first
        _write()
        _real_exit(code)

    os._exit = _exit

    def _forked():  # a rank forked from the zygote: a record of its own
        now = time.time()
        _record.update(role=f"forked rank (pid {os.getpid()})", pid=os.getpid(), started=now,
                       site=now, events=[], cpu_at_fork=time.process_time())

    os.register_at_fork(after_in_child=_forked)
'''


def trace(cmd: Command) -> tuple[float, list[dict]]:
    """One run of ``cmd`` with every process traced: (wall, one record per process)."""
    with tempfile.TemporaryDirectory(prefix="gradcmp-phases-") as directory:
        site = Path(directory) / "site"
        out = Path(directory) / "out"
        site.mkdir()
        out.mkdir()
        (site / "sitecustomize.py").write_text(TRACER)
        path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path, "GRADCMP_PHASES_DIR": str(out)}
        wall, _ = cmd.run(env)
        records = [json.loads(p.read_text()) for p in out.glob("*.json")]
    order = {"parent": 0, "bare launcher": 0}
    records.sort(key=lambda r: (order.get(r["role"], 1), r["role"]))
    return wall, records


def render_phases(name: str, wall: float, records: list[dict]) -> str:
    if not records:
        return f"{name}: nothing traced"
    t0 = min(r["started"] for r in records)
    lines = [
        f"phases of one `{name}` ({wall:.2f} s wall): seconds from the first process's "
        "start; [wall s, CPU s]"
    ]
    cpu_total = sum(r["cpu"] for r in records)
    for r in records:
        lines.append(
            f"  {r['role']}: started {r['started'] - t0:6.2f}, Python up {r['site'] - t0:6.2f}, "
            f"exit {r['exit'] - t0:6.2f}; CPU {r['cpu']:.2f} s"
        )
        for e in sorted(r["events"], key=lambda e: (e["start"], e["depth"])):
            indent = "    " + "  " * e["depth"]
            lines.append(
                f"{indent}{e['start'] - t0:6.2f} – {e['end'] - t0:6.2f}  {e['name']}  "
                f"[{e['end'] - e['start']:.3f}, {e['cpu']:.3f}]"
            )
    sums: dict[str, list[float]] = {}
    for r in records:
        for e in r["events"]:
            if e["depth"] == 0 or e["name"].startswith("import torch._dynamo"):
                sums.setdefault(e["name"], []).append(e["cpu"])
    lines.append(f"  CPU, every process: {cpu_total:.2f} s; by phase (summed over processes):")
    for event, cpus in sorted(sums.items(), key=lambda kv: -sum(kv[1])):
        if sum(cpus) >= 0.01:
            lines.append(f"    {sum(cpus):6.2f} s  {event} (×{len(cpus)})")
    return "\n".join(lines)


# --- report -------------------------------------------------------------------------------------


def environment() -> dict:
    import platform

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def verdict(cmds: list[Command]) -> dict:
    gradcmp, bare = cmds[0], cmds[1]
    ratio = statistics.median(gradcmp.wall) / statistics.median(bare.wall)
    cpu_ratio = statistics.median(gradcmp.cpu) / statistics.median(bare.cpu)
    return {"ratio": ratio, "cpu_ratio": cpu_ratio, "target": TARGET, "met": ratio <= TARGET}


def render_table(cmds, result, env, repeat, warmup) -> str:
    lines = [
        f"Python {env['python']} · {env['cpus']} CPUs ({env['cpus_usable']} usable) · load "
        f"{' '.join(map(str, env['load_average']))} · {env['date']}",
        f"{repeat} timed rounds (+{warmup} warm-up), round-robin, order rotated each round",
        "",
        f"{'command':52}  {'wall median':>11}  {'min':>6}  {'max':>6}  {'CPU median':>10}",
    ]
    for cmd in cmds:
        lines.append(
            f"{cmd.name:52}  {statistics.median(cmd.wall):10.2f}s  {min(cmd.wall):5.2f}s  "
            f"{max(cmd.wall):5.2f}s  {statistics.median(cmd.cpu):9.2f}s"
        )
    met = "met" if result["met"] else "NOT met"
    lines += [
        "",
        f"ratio gradcmp / bare spawn: {result['ratio']:.2f} (wall), {result['cpu_ratio']:.2f} "
        f"(CPU) — target ≤ {TARGET} × (wall): {met}",
        "",
        "command lines:",
        *(f"  {shlex.join(cmd.argv)}" for cmd in cmds),
    ]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--bare-rank"]:
        rank, world_size, port = map(int, sys.argv[2:5])
        bare_rank(rank, world_size, port, "--ddp" in sys.argv)
        return
    if sys.argv[1:2] == ["--bare-world"]:
        sys.exit(bare_world(int(sys.argv[2]), "--ddp" in sys.argv))
    if sys.argv[1:2] == ["--proto-world"]:
        sys.exit(proto_world(int(sys.argv[2])))
    if sys.argv[1:2] == ["--zygote"]:
        zygote(sys.argv[2], int(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--world-size", type=int, default=4)
    parser.add_argument("--phases", action="store_true", help="also trace one run of each world")
    parser.add_argument(
        "--prototypes",
        action="store_true",
        help="also time gradcmp's ranks launched as the suggested changes would (diagnostic)",
    )
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0 or args.world_size < 1:
        parser.error("--repeat and --world-size must be ≥ 1, --warmup ≥ 0")
    cmds = commands(args.world_size, args.prototypes)
    env = environment()
    measure(cmds, args.repeat, args.warmup)
    result = verdict(cmds)
    traced = [c for c in cmds if c.name != NATIVE]
    phases = [(cmd.name, *trace(cmd)) for cmd in traced] if args.phases else []
    if args.format == "json":
        doc = {
            "environment": env,
            "repeat": args.repeat,
            "warmup": args.warmup,
            "commands": [
                {
                    "name": c.name,
                    "argv": c.argv,
                    "diagnostic": c.diagnostic,
                    "wall_s": [round(s, 4) for s in c.wall],
                    "cpu_s": [round(s, 4) for s in c.cpu],
                    "wall_median_s": round(statistics.median(c.wall), 4),
                    "cpu_median_s": round(statistics.median(c.cpu), 4),
                }
                for c in cmds
            ],
            "target": {**result, "ratio": round(result["ratio"], 4)},
            "phases": [{"command": n, "wall_s": w, "processes": r} for n, w, r in phases],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    print(render_table(cmds, result, env, args.repeat, args.warmup))
    for name, wall, records in phases:
        print()
        print(render_phases(name, wall, records))


if __name__ == "__main__":
    main()
