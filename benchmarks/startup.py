"""Wall time of gradcmp's commands as a person runs them: one fresh process each, startup included.

Measured side by side — interleaved round-robin, one round = every command once, the order
rotated each round — so that every command sees the same machine load:

- `gradcmp --help`, `gradcmp models`, `gradcmp backends`, `gradcmp run -b native`
  (target: ≤ 0.3 s each, and neither torch nor jax imported);
- `gradcmp run` on the bundled seed data with the seed's four backends
  (target: ≤ 0.5 × the seed scripts; stretch: below a bare `import torch, jax`);
- the seed tutorial's four scripts (benchmarks/seed/), run one after another as four processes:
  one timing is their sum, what a person running them waits;
- `python -c "import torch, jax"`, the bare framework import.

Each command must exit 0 (`gradcmp run` does when every backend agrees). Whether the first four
import torch or jax is checked in a separate, untimed pass: the same entry point run under
`python -X importtime`, whose log names every module imported. Medians decide the targets.
Timings are noisy on a shared machine: compare rows of one run, not runs of different days.

    python benchmarks/startup.py [--repeat 5] [--warmup 1] [--format table|json]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = Path(__file__).resolve().parent / "seed"
SEED_SCRIPTS = ("loops.py", "torch_grad.py", "torch_backward.py", "jax_grad.py")
FRAMEWORKS = ("torch", "jax", "jaxlib")

FAST_LIMIT_S = 0.3  # the first four commands, absolute
RUN_VS_SEED = 0.5  # gradcmp run ≤ 0.5 × the seed scripts
SEED_NAME = "seed scripts (4 processes)"
IMPORT_NAME = 'python -c "import torch, jax"'


@dataclass
class Command:
    name: str
    argvs: list[list[str]]  # run one after another; one timing is their sum
    check_imports: bool = False
    samples: list[float] = field(default_factory=list)
    imports: list[str] | None = None  # frameworks imported, when checked

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def gradcmp_entry_point() -> Path:
    """The `gradcmp` console script beside this interpreter (the virtualenv's bin/)."""
    bindir = Path(sys.executable).parent
    for name in ("gradcmp", "gradcmp.exe"):
        if (bindir / name).is_file():
            return bindir / name
    sys.exit(
        f"startup.py: error: no `gradcmp` entry point in {bindir} (the directory of "
        f"{sys.executable}); install gradcmp into this interpreter's environment "
        "(pip install -c constraints.txt -e .) or run this script with the virtualenv's python"
    )


def commands(gradcmp: Path) -> list[Command]:
    py = sys.executable
    fast = [["--help"], ["models"], ["backends"], ["run", "-b", "native"]]
    return [
        *(
            Command("gradcmp " + " ".join(args), [[str(gradcmp), *args]], check_imports=True)
            for args in fast
        ),
        Command("gradcmp run", [[str(gradcmp), "run"]]),
        Command(SEED_NAME, [[py, str(SEED / script)] for script in SEED_SCRIPTS]),
        Command(IMPORT_NAME, [[py, "-c", "import torch, jax"]]),
    ]


def run_once(argv: list[str], extra: list[str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [*(extra or []), *argv], cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        sys.exit(
            f"startup.py: error: `{shlex.join(argv)}` exited {done.returncode}; "
            f"the timings would mean nothing. Its last output:\n{tail}"
        )
    return done


def time_once(cmd: Command) -> float:
    start = time.perf_counter()
    for argv in cmd.argvs:
        run_once(argv)
    return time.perf_counter() - start


def imported_frameworks(cmd: Command) -> list[str]:
    """Frameworks the command imports: its entry point under `python -X importtime`."""
    (argv,) = cmd.argvs
    done = run_once(argv, extra=[sys.executable, "-X", "importtime"])
    seen = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            module = line.rsplit("|", 1)[1].strip()
            if module.split(".")[0] in FRAMEWORKS:
                seen.add(module.split(".")[0])
    return sorted(seen)


def measure(cmds: list[Command], repeat: int, warmup: int) -> None:
    for _ in range(warmup):  # page cache, .pyc files: not what the timed rounds should see
        for cmd in cmds:
            time_once(cmd)
    for r in range(repeat):
        shift = r % len(cmds)
        for cmd in cmds[shift:] + cmds[:shift]:
            cmd.samples.append(time_once(cmd))
    for cmd in cmds:
        if cmd.check_imports:
            cmd.imports = imported_frameworks(cmd)


def verdicts(cmds: list[Command]) -> dict[str, list[dict]]:
    """Per command name, its targets: ratio, reference, target, met."""
    by_name = {c.name: c for c in cmds}
    seed, bare, run = by_name[SEED_NAME], by_name[IMPORT_NAME], by_name["gradcmp run"]
    out: dict[str, list[dict]] = {}
    for cmd in cmds:
        if cmd.check_imports:
            out[cmd.name] = [
                {
                    "target": f"≤ {FAST_LIMIT_S} s, no torch/jax",
                    "reference": "import torch, jax",
                    "ratio": cmd.median / bare.median,
                    "met": cmd.median <= FAST_LIMIT_S and not cmd.imports,
                }
            ]
    out[run.name] = [
        {
            "target": f"≤ {RUN_VS_SEED} × seed",
            "reference": "seed scripts",
            "ratio": run.median / seed.median,
            "met": run.median <= RUN_VS_SEED * seed.median,
        },
        {
            "target": "< import (stretch)",
            "reference": "import torch, jax",
            "ratio": run.median / bare.median,
            "met": run.median < bare.median,
        },
    ]
    return out


def environment() -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "python": platform.python_version(),
        "executable": sys.executable,
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "load_average": load,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
    }


def render_table(cmds: list[Command], targets: dict, env: dict, repeat: int, warmup: int) -> str:
    load = "n/a" if env["load_average"] is None else " ".join(map(str, env["load_average"]))
    lines = [
        f"Python {env['python']} · {env['cpus']} CPUs ({env['cpus_usable']} usable) · "
        f"load {load} · {env['date']}",
        f"{repeat} timed rounds (+{warmup} warm-up), round-robin, order rotated each round; "
        "wall seconds per fresh process (seed scripts: sum of the four)",
        "",
    ]
    head = ["command", "median s", "min s", "max s", "imports torch/jax", "ratio", "target", "met"]
    rows = []
    for cmd in cmds:
        if cmd.imports is None:
            imports = "—"
        else:
            imports = "yes: " + ", ".join(cmd.imports) if cmd.imports else "no"
        stats = [f"{cmd.median:.3f}", f"{min(cmd.samples):.3f}", f"{max(cmd.samples):.3f}"]
        goals = targets.get(cmd.name) or [None]
        for i, goal in enumerate(goals):
            name, cells, imp = (cmd.name, stats, imports) if i == 0 else ("", ["", "", ""], "")
            if goal is None:
                rows.append([name, *cells, imp, "(reference)", "—", "—"])
            else:
                ratio = f"{goal['ratio']:.2f} × {goal['reference']}"
                met = "met" if goal["met"] else "NOT met"
                rows.append([name, *cells, imp, ratio, goal["target"], met])
    numeric = {1, 2, 3}
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def fmt(row: list[str]) -> str:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    lines += [fmt(head), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in rows]
    lines += ["", "command lines (cwd " + str(ROOT) + "):"]
    for cmd in cmds:
        lines.append(f"  {cmd.name}:")
        lines += [f"    {shlex.join(argv)}" for argv in cmd.argvs]
    lines.append(
        f"  import check: {shlex.join([sys.executable, '-X', 'importtime'])} <the command's line>"
    )
    return "\n".join(lines)


def render_json(cmds: list[Command], targets: dict, env: dict, repeat: int, warmup: int) -> str:
    doc = {
        "environment": env,
        "repeat": repeat,
        "warmup": warmup,
        "cwd": str(ROOT),
        "commands": [
            {
                "name": cmd.name,
                "argv": cmd.argvs,
                "samples_s": [round(s, 4) for s in cmd.samples],
                "median_s": round(cmd.median, 4),
                "min_s": round(min(cmd.samples), 4),
                "max_s": round(max(cmd.samples), 4),
                "imports_frameworks": cmd.imports,
                "targets": [
                    {**g, "ratio": round(g["ratio"], 4)} for g in targets.get(cmd.name, [])
                ],
            }
            for cmd in cmds
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args()
    if args.repeat < 1 or args.warmup < 0:
        parser.error("--repeat must be ≥ 1 and --warmup ≥ 0")
    cmds = commands(gradcmp_entry_point())
    env = environment()
    measure(cmds, args.repeat, args.warmup)
    targets = verdicts(cmds)
    render = render_table if args.format == "table" else render_json
    print(render(cmds, targets, env, args.repeat, args.warmup))


if __name__ == "__main__":
    main()
