"""User loss files: the port-bug suite (caught on the side that is off, clean twin passes) and
one clear error for every broken file."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gradcmp.cli import cli
from gradcmp.selftest import PORT, PORT_BUGS


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def write(tmp_path, text, name="port.py"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_clean_port_agrees(tmp_path):
    result = invoke("run", "--loss", write(tmp_path, PORT), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["verdict"] == "agree"
    assert report["reference"]["name"] == "highprec"
    sides = {(r["backend"], r["side"]) for r in report["results"] if r["status"] == "ok"}
    assert ("torch-grad", "loss_torch") in sides and ("jax-grad", "loss_jax") in sides


@pytest.mark.parametrize(("name", "side", "old", "new"), PORT_BUGS, ids=[b[0] for b in PORT_BUGS])
def test_port_bug_is_caught_in_float64_on_its_side(tmp_path, name, side, old, new):
    assert old in PORT
    text = PORT.replace(old, new)
    line = text[: text.index(new)].count("\n") + 1  # the planted line, 1-based
    path = write(tmp_path, text)
    result = invoke("run", "--loss", path, "--dtype", "float64", "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    port = report["port"]
    assert port["sides"] == ["loss_torch", "loss_jax", "loss"]
    other = "loss_torch" if side == "loss_jax" else "loss_jax"
    if name == "float32-downcast":
        # The same function, computed in float32 inside a float64 run: that side's rows
        # depart from their own graph, and say where the cast is.
        assert port["verdict"] == "same"
        off = [r for r in report["results"] if r["verdict"] == "disagree"]
        assert off and all(r["side"] == side and r["reference"] == side for r in off)
        assert all(f"casts to float32 at {path}:{line}" in r["why"] for r in off)
    else:
        # A different function: the port names the side that parts from the others, and the
        # line where it parts; every row agrees with its own side's graph.
        assert port["verdict"] == "different"
        assert port["note"].startswith(f"{side} computes a different function")
        (located,) = [d for d in port["divergence"] if d["side"] == side]
        assert (located["file"], located["line"]) == (path, line)
        assert located["code"] == text.splitlines()[line - 1].strip()
        assert all(r["verdict"] == "agree" for r in report["results"] if r["side"] == side)
    assert {r["verdict"] for r in report["results"] if r["side"] == other} == {"agree"}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("def loss(params, X, y, xp):\n    return 0\n", None, "defines no PARAMS"),
        ("PARAMS = {'a': 0.0}\n", None, "defines no function loss"),
        ("PARAMS = {'a': 0.0}\ndef loss(params, X, y, xp)\n    return 0\n", 2, "syntax error"),
        ("import os\nPARAMS = {'a': 0.0}\nraise RuntimeError('boom')\n", 3, "RuntimeError: boom"),
        ("PARAMS = []\ndef loss(params, X, y, xp):\n    return 0\n", None, "PARAMS is not"),
        ("PARAMS = {'a': 'x'}\ndef loss(params, X, y, xp):\n    return 0\n", None, "not a number"),
        ("PARAMS = {'a b': 0.0}\ndef loss(params, X, y, xp):\n    return 0\n", None, "identifier"),
        (
            "PARAMS = {'w': [0.0, 0.0]}\ndef loss(params, X, y, xp):\n"
            "    return xp.mean(X @ params['w'] - y)\n",
            3,
            "loss() raised ValueError",
        ),
        (
            "PARAMS = {'w': 0.0}\ndef loss(params, X, y, xp):\n    return X[:, 0] * params['w']\n",
            None,
            "returned an array of shape (6,), not a scalar",
        ),
    ],
)
def test_broken_loss_files_exit_2_with_one_line(tmp_path, text, line, fragment):
    path = write(tmp_path, text)
    result = invoke("run", "--loss", path)
    assert result.exit_code == 2, result.output
    (message,) = result.stderr.splitlines()
    where = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(f"gradcmp: error: {where}"), message
    assert fragment in message


def test_missing_loss_file_and_model_with_loss(tmp_path):
    result = invoke("run", "--loss", str(tmp_path / "nope.py"))
    assert result.exit_code == 2 and "no such file" in result.stderr
    result = invoke("run", "--loss", write(tmp_path, PORT), "--model", "linear")
    assert result.exit_code == 2 and "exclude each other" in result.stderr


def test_a_side_that_raises_is_failed_with_its_line(tmp_path):
    text = PORT.replace("return jnp.mean(r ** 2) / 2", "return jnp.mean(r ** 2) / undefined_name")
    path = write(tmp_path, text)
    result = invoke("run", "--loss", path, "-b", "jax-grad", "--format", "json")
    assert result.exit_code == 3
    (r, _) = json.loads(result.output)["results"]
    assert r["status"] == "failed"
    assert r["note"].startswith(f"{path}:17: NameError")


@pytest.mark.parametrize(
    "expression",
    [
        "xp.sqrt(params['w'] * params['w'])",
        "1 / (params['w'] * X[:, 0])",
        "xp.log(params['w'] * params['w'] * X[:, 0])",
    ],
)
def test_a_loss_not_differentiable_at_its_params_is_exit_2(tmp_path, expression):
    path = write(
        tmp_path,
        f"PARAMS = {{'w': 0.0}}\ndef loss(params, X, y, xp):\n    return xp.mean({expression})\n",
        "edge.py",
    )
    result = CliRunner().invoke(cli, ["run", "--loss", path, "--dtype", "float64"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gradcmp: error: {path}: no reference at these parameters")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "PARAMS = {'w': 0.0}\ndef loss(params, X, y, xp):\n    return None\n",
            "returned NoneType",
        ),
        ("PARAMS = {'w': 0.0}\ndef loss(params, X, y, xp):\n    return 'x'\n", "returned str"),
        ("PARAMS = {'w': 0.0}\ndef loss(params, X, y, xp):\n    return 1j\n", "complex"),
        ("PARAMS = {'w': []}\ndef loss(params, X, y, xp):\n    return 0.0\n", "is empty"),
        ("import sys\nsys.exit(3)\n", "called sys.exit(3)"),
    ],
)
def test_more_broken_loss_files(tmp_path, text, fragment):
    path = write(tmp_path, text, "bad.py")
    result = CliRunner().invoke(cli, ["run", "--loss", path])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert fragment in line
