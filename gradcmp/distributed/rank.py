"""One rank of a world that ``world.py`` started: ``python -m gradcmp.distributed.rank DIR RANK
PARENT_PID``, or forked by the world's zygote (zygote.py).

It rebuilds the Problem from the job (the model from its recipe, the dataset and parameters as
the parent had them), runs the job's engine for every dtype asked, writes its result to
``DIR/rankR.pkl`` (atomically) and only then tears the engine down. An error is one line on
stderr, prefixed ``gradcmp-rank:``, which the parent reports; a loss that cannot be sharded
is a result (``{"skip": why}``), sent by every rank alike.
"""

from __future__ import annotations

import atexit
import os
import pickle
import signal
import sys

from ..errors import one_line
from . import world


def engine_for(name: str):
    """The function that runs engine ``name`` in a rank: (job, rank, directory) → (result,
    teardown)."""
    if name.startswith("torch"):
        from .torch_engines import run_rank
    else:
        from .jax_engines import run_rank
    return run_rank


def main(argv: list[str]) -> int:
    directory, rank, parent = argv[0], int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # gradcmp ends the world on Ctrl-C
    from ..judging.children import die_with_parent

    die_with_parent(parent)
    with open(os.path.join(directory, world.JOB_FILE), "rb") as f:
        job = pickle.load(f)
    teardown = None
    try:
        result, teardown = engine_for(job["engine"])(job, rank, directory)
    except world.SkipWorld as exc:
        result = {"skip": str(exc)}
    except BaseException as exc:  # one line for the parent, which names the rank
        print(f"gradcmp-rank: {_where(exc, job)}{one_line(exc)}", file=sys.stderr, flush=True)
        return 1
    path = world.result_file(directory, rank)
    with open(path + ".tmp", "wb") as f:
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path + ".tmp", path)
    if teardown is not None:
        teardown()
    # Done. The atexit handlers run (a loss's own among them); the interpreter's finalization
    # with torch loaded (≈0.7 s per rank, measured; seconds on a loaded machine) is skipped.
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _where(exc: BaseException, job: dict) -> str:
    """``FILE:LINE: `` where the error came from the user's loss file."""
    recipe = job.get("recipe") or ()
    if not recipe or recipe[0] != "file":
        return ""
    from ..loading.lossfile import where_in_file

    where = where_in_file(exc, recipe[1])
    return f"{where}: " if ":" in where.removeprefix(recipe[1]) else ""


if __name__ == "__main__":
    sys.stdout = sys.stderr  # what a loss prints is not the report
    sys.exit(main(sys.argv[1:]))
