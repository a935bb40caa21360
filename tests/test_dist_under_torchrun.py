"""``python -m gradcmp.dist`` under two torchrun agents on 127.0.0.1 (a two-host world on one
machine): each agent's rank reads its own Parquet partitions, rank 0 reports the full-data
verdict, and both agents end with its exit code. Without a launcher it says how to launch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pq = pytest.importorskip("pyarrow.parquet")
pa = pytest.importorskip("pyarrow")

TORCHRUN = Path(sys.executable).with_name("torchrun")


def _free_port() -> int:
    with socket.socket() as s:  # the OS picks; torchrun's agent binds it right after
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _agents(arguments: list[str], cwd: Path) -> list[subprocess.CompletedProcess]:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                str(TORCHRUN),
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={node}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "gradcmp.dist",
                *arguments,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for node in (0, 1)
    ]
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=240)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return done


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this python")
def test_two_agents_on_partitions_agree_with_the_full_data_reference(tmp_path):
    rng = np.random.default_rng(1)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, n in enumerate([40, 25, 31]):
        x = rng.normal(size=n)
        pq.write_table(pa.table({"x": x, "y": 2 * x + rng.normal(size=n)}),
                       parts / f"part-{i:05d}.parquet")
    node0, node1 = _agents(["--data", str(parts), "--format", "json", "--dtype", "float64"],
                           tmp_path)
    assert node0.returncode == 0, node0.stderr[-2000:]
    assert node1.returncode == 0, node1.stderr[-2000:]
    import json

    report = json.loads(node0.stdout)
    (result,) = report["results"]
    assert result["backend"] == "torch-ddp:2"
    assert result["verdict"] == "agree"
    assert result["world_size"] == 2
    assert result["shards"] == [65, 31]  # partitions 0–1 on rank 0, partition 2 on rank 1
    assert "partial sums added exactly" in report["reference"]["method"]
    assert node1.stdout == ""  # only rank 0 reports


def test_without_a_launcher_it_says_how_to_launch():
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    done = subprocess.run(
        [sys.executable, "-m", "gradcmp.dist"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr.startswith("gradcmp: error: python -m gradcmp.dist runs as one rank")
    assert "torchrun" in done.stderr and "Traceback" not in done.stderr


def test_two_jax_processes_on_partitions_agree_with_the_full_data_reference(tmp_path):
    """The same, launched as a cluster launcher would (RANK, WORLD_SIZE set; a coordinator
    address): jax.distributed over two processes on 127.0.0.1, padding the shorter one."""
    rng = np.random.default_rng(2)
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, n in enumerate([30, 17]):
        x = rng.normal(size=n)
        pq.write_table(pa.table({"x": x, "y": -x + rng.normal(size=n)}),
                       parts / f"part-{i:05d}.parquet")
    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gradcmp.dist", "--data", str(parts), "--engine", "jax",
             "--coordinator", f"127.0.0.1:{port}", "--format", "json", "--dtype", "float64"],
            env={**os.environ, "RANK": str(rank), "WORLD_SIZE": "2"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank in (0, 1)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    import json

    (result,) = json.loads(outs[0][0])["results"]
    assert (result["backend"], result["verdict"]) == ("jax-sharded:2", "agree")
    assert result["shards"] == [30, 17]
    assert result["engine"] == "jax (launched)"
