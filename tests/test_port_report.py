"""The port verdict in every format: JSON's ``port`` object and each result's ``reference``
(docs/design.md, "Contracts"), the located divergence in plain, Markdown and JUnit, and the
exit code; plus the loss-file forms a port brings (no generic loss, PARAMS from .npz or a
function, ACCEPT/--accept)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from gradcmp.cli import cli

pytest.importorskip("torch")
pytest.importorskip("jax")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "port_linear.py"
BUGGY_LINE = "    return jnp.mean((prediction - y) ** 2) / 2"


def invoke(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def _buggy(tmp_path) -> tuple[Path, int]:
    """examples/port_linear.py with the ½ dropped in loss_jax; and that line's number."""
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    line = lines.index(BUGGY_LINE) + 1
    lines[line - 1] = "    return jnp.mean((prediction - y) ** 2)"
    path = tmp_path / "port.py"
    path.write_text("\n".join(lines) + "\n")
    return path, line


def test_json_has_the_port_object_and_each_results_reference(tmp_path):
    path, line = _buggy(tmp_path)
    result = invoke("run", "--loss", path, "--dtype", "float64", "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.output)
    port = report["port"]
    assert set(port) >= {"verdict", "sides", "differences", "divergence", "kinks", "note"}
    assert port["verdict"] == "different"
    assert port["sides"] == ["loss_torch", "loss_jax", "loss"]
    for d in port["differences"]:
        assert set(d) >= {"sides", "loss_rel", "worst"} and set(d["worst"]) == {"name", "rel"}
    located = {d["side"]: d for d in port["divergence"]}
    assert set(located) == {"loss_torch", "loss_jax"}
    assert located["loss_jax"]["file"] == str(path) and located["loss_jax"]["line"] == line
    assert located["loss_jax"]["code"] == "return jnp.mean((prediction - y) ** 2)"
    for d in located.values():
        assert set(d) >= {"side", "file", "line", "op", "code", "rel"}
    references = {r["backend"]: r["reference"] for r in report["results"] if r["status"] == "ok"}
    assert references == {
        "native": "highprec",  # grad_native: held against the generic loss
        "torch-grad": "loss_torch",
        "torch-backward": "loss_torch",
        "jax-grad": "loss_jax",
    }
    assert report["verdict"] == "disagree" and report["exit_code"] == 1


def test_a_built_in_models_results_name_the_exact_reference():
    report = json.loads(invoke("run", "-b", "native", "--format", "json").output)
    assert "port" not in report
    assert {r["reference"] for r in report["results"]} == {"exact"}


def test_plain_markdown_and_junit_carry_the_located_line(tmp_path):
    path, line = _buggy(tmp_path)
    plain = invoke("run", "--loss", path, "--dtype", "float64", "--format", "plain").output
    assert "port (loss_torch vs loss_jax vs loss): different: loss_jax computes" in plain
    assert f"loss_jax parts at {path}:{line} (div, forward" in plain
    markdown = invoke("run", "--loss", path, "--dtype", "float64", "--format", "markdown").output
    assert f"- loss_jax parts at {path}:{line}" in markdown
    junit = invoke("run", "--loss", path, "--dtype", "float64", "--format", "junit").output
    suite = ET.fromstring(junit.encode())
    (case,) = [c for c in suite.iter("testcase") if c.get("name").startswith("port[")]
    failure = case.find("failure")
    assert failure is not None and failure.get("message").startswith("loss_jax computes")
    assert f"{path}:{line}" in failure.text
    assert int(suite.get("failures")) >= 1


TWO_SIDES = """\
import numpy as np

DATA = "xy.csv"
{params}
ACCEPT = {accept}


def loss_torch(params, X, y):
    r = params["theta0"] + params["theta1"] * X[:, 0] - y
    return (r * r).mean() / 2 + {eps_torch}


def loss_jax(params, X, y):
    import jax.numpy as jnp

    r = params["theta0"] + params["theta1"] * X[:, 0] - y
    return jnp.mean(r * r) / 2 + {eps_jax}
"""


@pytest.mark.parametrize(
    "params",
    [
        'PARAMS = "weights.npz"',
        "def PARAMS():\n    return {'theta0': np.array(0.5), 'theta1': np.array(-1.25)}",
    ],
    ids=["npz", "function"],
)
def test_a_port_without_a_generic_loss_and_params_from_a_file_or_function(tmp_path, params):
    np.savez(tmp_path / "weights.npz", theta0=np.array(0.5), theta1=np.array(-1.25))
    path = tmp_path / "port.py"
    path.write_text(TWO_SIDES.format(params=params, accept=0.0, eps_torch=0.0, eps_jax=0.0))
    result = invoke("run", "--loss", path, "-b", "all", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["params"] == {"theta0": 0.5, "theta1": -1.25}
    assert report["port"]["verdict"] == "same"
    assert report["reference"]["name"] == "loss_torch"  # the first side, without a spec
    rows = {(r["backend"], r["dtype"]): r for r in report["results"]}
    fd = rows[("finite-diff", "float64")]  # loss_torch, evaluated without autograd
    assert fd["side"] == "loss_torch" and fd["verdict"] == "agree"
    assert rows[("complex-step", "float64")]["status"] == "skipped"


def test_an_accepted_difference_is_reported_but_does_not_fail(tmp_path):
    np.savez(tmp_path / "weights.npz", theta0=np.array(0.5), theta1=np.array(-1.25))
    path = tmp_path / "port.py"
    text = TWO_SIDES.format(
        params='PARAMS = "weights.npz"', accept=0.0, eps_torch=1e-5, eps_jax=1e-6
    )
    path.write_text(text)
    failing = invoke("run", "--loss", path, "--dtype", "float64", "--format", "json")
    assert failing.exit_code == 1
    assert json.loads(failing.output)["port"]["verdict"] == "different"
    accepted = invoke(
        "run", "--loss", path, "--dtype", "float64", "--accept", "1e-4", "--format", "json"
    )
    assert accepted.exit_code == 0, accepted.output
    port = json.loads(accepted.output)["port"]
    assert port["verdict"] == "same" and port["accepted"] == 1e-4
    assert port["differences"] and "accepted" in port["note"]
    (difference,) = port["differences"]
    # 9e-6 on a loss of 329.2: rel 2.7e-8, far beyond the sides' float64 constants' tier
    assert 1e-8 < difference["loss_rel"] < 1e-7


def test_a_file_with_one_side_and_no_loss_is_one_clear_line(tmp_path):
    path = tmp_path / "one.py"
    path.write_text("PARAMS = {'a': 0.0}\ndef loss_torch(params, X, y):\n    return X.sum()\n")
    result = invoke("run", "--loss", path)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gradcmp: error: {path}: defines no function loss")
    assert "not both loss_torch and loss_jax" in result.stderr


def test_params_naming_a_missing_file_is_one_clear_line(tmp_path):
    path = tmp_path / "port.py"
    path.write_text(
        TWO_SIDES.format(params='PARAMS = "nope.npz"', accept=0.0, eps_torch=0.0, eps_jax=0.0)
    )
    result = invoke("run", "--loss", path)
    assert result.exit_code == 2
    assert "PARAMS names 'nope.npz', which is not a file" in result.stderr
    assert "Traceback" not in result.stderr


LABELS_FILE = """\
LABELS = True
PARAMS = {"W": [[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.1], [0.3, -0.1, 0.4]],
          "b": [0.1, 0.0, -0.1]}


def loss(params, X, y, xp):
    z = X @ params["W"] + params["b"]
    m = xp.max(z, axis=1, keepdims=True)
    logp = z - m - xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))
    onehot = xp.asarray(y[:, None] == xp.arange(3), dtype=xp.float64)
    return -xp.mean(xp.sum(onehot * logp, axis=1))


def loss_torch(params, X, y):
    import torch.nn.functional as F

    assert not y.is_floating_point()  # the labels arrive as integers
    return F.cross_entropy(X @ params["W"] + params["b"], y)


def loss_jax(params, X, y):
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(X @ params["W"] + params["b"], axis=1)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
"""

LABELS_DATA = Path(__file__).resolve().parent / "ports" / "data" / "labels3.csv"


def test_labels_arrive_as_integers_on_every_side_and_backend(tmp_path):
    path = tmp_path / "ce.py"
    path.write_text(LABELS_FILE)
    result = invoke("run", "--loss", path, "--data", LABELS_DATA, "-b", "all", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["port"]["verdict"] == "same"
    assert report["reference"]["name"] == "highprec"
    ran = {r["backend"] for r in report["results"] if r["status"] == "ok"}
    assert {"torch-grad", "jax-grad", "jax-jit", "finite-diff"} <= ran


def test_labels_that_are_not_integers_are_one_clear_line(tmp_path):
    path = tmp_path / "ce.py"
    path.write_text(LABELS_FILE)
    data = tmp_path / "bad.csv"
    data.write_text("x0,x1,x2,x3,y\n1,2,3,4,0\n1,2,3,4,1.5\n")
    result = invoke("run", "--loss", path, "--data", data)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gradcmp: error: {data}: target 'y' row 2 = 1.5 is not")
