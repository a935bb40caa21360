"""The ranks of one world forked from one interpreter that imported their framework once:
``python -m gradcmp.distributed.zygote DIR N PARENT_PID``.

A torch rank spends seconds of CPU importing torch, torch.distributed and what DDP or FSDP2
bring (measured: about 4 s each on a 2-core machine); a world of 8 paid that 8 times. This
process (the zygote) imports them once, then forks the N ranks. A fork is safe only while the
process has a single thread (a forked copy of a running thread pool can deadlock): importing
starts none, and the zygote checks that it has one before it forks; otherwise it starts each
rank as a fresh interpreter, as world.py does for a world of one. It runs no loss and makes no
process group before forking: each rank does that itself, exactly as a spawned one.

Each forked rank takes a session of its own, writes to its own log and dies with the zygote
(PR_SET_PDEATHSIG), which dies with gradcmp. The zygote writes each rank's pid when it has
started it (``rankR.pid``) and its exit status when it has ended (``rankR.exit``, Popen's
convention: −N for signal N); world.py reads them. If the zygote fails before forking (the
framework does not import), it writes its error line into every rank's log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import traceback

from ..errors import one_line
from . import world


def main(directory: str, processes: int, parent: int) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # gradcmp ends the world on Ctrl-C
    from ..judging.children import die_with_parent

    die_with_parent(parent)
    try:
        import pickle

        from .rank import engine_for

        with open(os.path.join(directory, world.JOB_FILE), "rb") as f:
            job = pickle.load(f)
        engine_for(job["engine"])  # imports the engine's module
        if job["engine"].startswith("torch"):
            from .torch_engines import preload

            preload(job)
    except BaseException as exc:  # every rank says why
        for rank in range(processes):
            with open(world.log_file(directory, rank), "a") as log:
                print(f"gradcmp-rank: {one_line(exc)}", file=log)
        return 1
    fork = single_threaded()
    sys.stdout.flush()
    sys.stderr.flush()
    children: dict[int, int] = {}
    for rank in range(processes):
        pid = _fork_rank(directory, rank) if fork else _spawn_rank(directory, rank)
        _write(world.pid_file(directory, rank), str(pid))
        children[pid] = rank
    while children:
        pid, status = os.waitpid(-1, 0)
        rank = children.pop(pid, None)
        if rank is not None:
            _write(world.exit_file(directory, rank), str(os.waitstatus_to_exitcode(status)))
    return 0


def single_threaded() -> bool:
    """Whether this process runs one thread (Linux: /proc/self/task), so that it may fork."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _fork_rank(directory: str, rank: int) -> int:
    zygote = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        from ..judging.children import die_with_parent

        die_with_parent(zygote)  # first: a zygote ended before this point ends it too
        _like_a_fresh_interpreter(directory, rank, zygote)
        os.setsid()  # Ctrl-C reaches gradcmp only; the world's end kills the session whole
        log = os.open(world.log_file(directory, rank), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        sys.stdout = sys.stderr  # what a loss prints is not the report
        from .rank import main as rank_main

        code = rank_main([directory, str(rank), str(zygote)])
    except SystemExit as exc:  # as the interpreter reads it: None is 0, a message 1
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _like_a_fresh_interpreter(directory: str, rank: int, zygote: int) -> None:
    """What a rank would have of its own as a fresh interpreter: its arguments, and random
    number generators seeded afresh (Python's own reseeds at fork; torch's and numpy's global
    ones would otherwise give every rank the zygote's stream)."""
    sys.argv = [sys.argv[0], directory, str(rank), str(zygote)]
    if "torch" in sys.modules:
        sys.modules["torch"].seed()
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()


# The ranks started as fresh interpreters, kept: a Popen dropped while its process runs is
# reaped by the next Popen made (subprocess's own clean-up), and its status lost to waitpid.
_spawned: list[subprocess.Popen] = []


def _spawn_rank(directory: str, rank: int) -> int:
    command = [sys.executable, "-m", "gradcmp.distributed.rank", directory, str(rank)]
    with open(world.log_file(directory, rank), "ab") as log:
        _spawned.append(
            subprocess.Popen(
                [*command, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return _spawned[-1].pid


def _write(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    sys.stdout = sys.stderr  # nothing of the zygote's is the report
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
