"""The example CI files in examples/ci/: each installs the CPU torch through constraints.txt,
caches the virtual environment, keeps the reports as artifacts, and its gradcmp commands pass
as written (run here from the repository root, as the job runs them)."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CI = ROOT / "examples" / "ci"
GRADCMP = [sys.executable, "-m", "gradcmp"]


def gradcmp_commands(text: str) -> list[list[str]]:
    """The gradcmp command lines of a workflow's run blocks / a job's script (no YAML parser is
    installed: a command is a line whose words start with ``gradcmp``, after a ``- `` item)."""
    commands = []
    for line in text.splitlines():
        words = shlex.split(line.strip().removeprefix("- "), comments=True)
        if words[:1] == ["gradcmp"]:
            commands.append(words[1:])
    return commands


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_the_example_ci_file_installs_caches_gates_and_keeps_reports(name, tmp_path):
    text = (CI / name).read_text()
    assert "-c constraints.txt" in text  # the pinned CPU torch, not a CUDA build
    assert "download.pytorch.org/whl/cpu" in text
    assert ".venv" in text and "cache" in text
    assert "reports/" in text  # kept as artifacts
    commands = gradcmp_commands(text)
    assert len(commands) == 2
    for args in commands:
        args = [a.replace("reports", str(tmp_path / "reports")) for a in args]
        done = subprocess.run(
            [*GRADCMP, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, (args, done.stdout[-1500:], done.stderr[-1500:])
        assert done.stdout.splitlines()[-1].startswith("verdict: agree")
    assert (tmp_path / "reports" / "gradcmp-junit.xml").exists()
    assert (tmp_path / "reports" / "port" / "gradcmp.md").exists()
