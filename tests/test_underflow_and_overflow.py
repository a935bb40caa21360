"""Cases found in review: underflow and flush-to-zero, overflow, inputs a dtype cannot hold,
and odd options. Each was a false alarm or a crash before."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradcmp
from gradcmp.agreement import DISAGREE, INCONCLUSIVE
from gradcmp.cli import cli


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


BACKENDS = ["native", "torch-grad", "jax-grad"]


@pytest.mark.parametrize(
    ("X", "y", "params", "dtype"),
    [
        # squares of 1e-20 are subnormal in float32; XLA on CPU flushes them to zero
        ([1.0, 2.0, 3.0], [1e-20, 2e-20, 3e-20], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-39, 2e-39, 3e-39], None, "float32"),
        ([1.0, 2.0, 3.0], [1e-310, 2e-310, 3e-310], None, "float64"),
        # an underflow in g·r_i, then multiplied by a huge x_ij
        ([2.0**100] * 3, [3 * 2.0**-149] * 3, None, "float32"),
        ([2.0**1000] * 3, [3 * 2.0**-1074] * 3, None, "float64"),
        # θ1_0·x_i0 underflows in the residual, which then meets x_i1 = 2**127
        ([[2.0**-147, 2.0**100]] * 3, [1.0] * 3, {"theta1": [1.125, 0.0]}, "float32"),
    ],
)
def test_underflow_is_never_a_false_alarm(X, y, params, dtype):
    report = gradcmp.compare(
        (np.array(X), np.array(y)), params=params, backends=BACKENDS, dtypes=dtype
    )
    for r in report.results:
        assert r.status == "ok", r.note
        assert r.verdict != DISAGREE, (r.backend, r.why)


def test_overflow_beyond_the_range_is_inconclusive_not_a_bug():
    report = gradcmp.compare(
        gradcmp.data.bundled_path(), params={"theta1": 1e308}, backends=["native"], dtypes="float64"
    )
    (r,) = report.results
    assert r.verdict == INCONCLUSIVE and "beyond float64's range" in r.why
    assert report.exit_code == 0


def test_overflow_inside_the_range_is_a_disagreement_that_says_so():
    # Σr² overflows float32 although the exact mean (1.125e38) fits in it.
    report = gradcmp.compare(
        (np.array([1.5e19, 1.5e19]), np.zeros(2)),
        params={"theta1": 1.0},
        backends=["native"],
        dtypes="float32",
    )
    (r,) = report.results
    assert r.verdict == DISAGREE
    assert "float32 overflowed although the exact value is in its range" in r.why


def test_an_input_float32_cannot_hold_skips_float32(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("x,y\n1,2\n1e39,3\n")
    result = invoke("run", "--data", str(path), "-b", "native", "--format", "json")
    assert result.exit_code == 0, result.output
    by_dtype = {r["dtype"]: r for r in json.loads(result.output)["results"]}
    assert by_dtype["float32"]["status"] == "skipped"
    assert by_dtype["float32"]["note"] == "not computed: x row 2 = 1e+39 overflows float32"
    assert by_dtype["float64"]["verdict"] == "agree"
    # Nothing computed at all: inconclusive, a warning (exit 4 under --strict).
    only32 = ("run", "--data", str(path), "-b", "native", "--dtype", "float32")
    assert invoke(*only32).exit_code == 0
    assert invoke(*only32, "--strict").exit_code == 4


def test_a_failed_backend_exits_3_even_without_b(monkeypatch):
    from gradcmp.backends import BACKENDS as REGISTRY
    from gradcmp.backends.jax_grad import JaxGrad

    def broken(self, problem, dtype):
        raise ImportError("jaxlib is broken")

    monkeypatch.setattr(JaxGrad, "compute", broken)
    assert "jax-grad" in REGISTRY
    result = invoke("run", "--format", "json")
    assert result.exit_code == 3
    statuses = {
        r["status"] for r in json.loads(result.output)["results"] if r["backend"] == "jax-grad"
    }
    assert statuses == {"failed"}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-b", ""], "no backend named"),
        (["-b", "exact"], "exact is the reference"),
        (["--dtype", ""], "no dtype named"),
        (["--param", "theta1[ ]=1"], "no element"),
        (["--param", "theta1=0e99999999999"], None),
        (["--param", "theta1=1e-99999999999"], "far below float64's range"),
        (["--output", ""], "cannot write a report to ''"),
        (["--data", ""], "the data path is empty"),
    ],
)
def test_odd_options(args, fragment):
    result = invoke("run", *args)
    if fragment is None:  # 0e99999999999 is exactly 0, quickly
        assert result.exit_code == 0, result.output
        return
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("gradcmp: error: ") and fragment in line


def test_report_dir_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    result = invoke("run", "-b", "native", "--report-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert "cannot create the report directory" in result.stderr


def test_integers_beyond_2_53_keep_their_exact_values():
    X = np.array([1, 2, 2**53 + 1, 2**60 + 3], dtype=np.int64)
    report = gradcmp.compare((X, np.arange(4)), params={"theta1": 1}, backends=["native"])
    assert report.reference.rounding["float64"].rounded == 2
    # The as-written reference is for the integers given, not their float64 roundings.
    assert report.reference.as_written.loss != report.reference.by_dtype["float64"].loss


def test_float_params_are_the_binary_numbers_they_are():
    report = gradcmp.compare(
        gradcmp.data.bundled_path(), params={"theta0": 0.1}, backends=["native"]
    )
    assert report.reference.rounding["float64"].rounded == 0  # 0.1 as a float is a float64
    assert report.reference.rounding["float32"].rounded == 1


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("x,y\r1,2\r", 1, "carriage return inside a line"),
        ("x,y\n1,\u00a02\n", 2, "is not a decimal number"),  # a no-break space is not ASCII
        ("x,y\n1,2\n3,\x0c4\n5,6\n", 3, "is not a decimal number"),  # form feed: one line
        ("x,y\n1,2\u20283\n", 2, "is not a decimal number"),  # U+2028 does not end a line
    ],
)
def test_line_ends_and_blanks(tmp_path, content, line, fragment):
    path = tmp_path / "d.csv"
    path.write_bytes(content.encode())
    result = invoke("run", "--data", str(path), "-b", "native")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gradcmp: error: {path}:{line}: ")
    assert fragment in result.stderr


def test_malformed_baseline_entries(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"results": [{"backend": "native"}]}))
    result = invoke("run", "-b", "native", "--baseline", str(path))
    assert result.exit_code == 2 and "not a gradcmp JSON report" in result.stderr


# --- Second review: the high-precision reference and loss files -----------------------------


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


ONE_ROW = "x,y\n626.4636944209259,0\n"


@pytest.mark.parametrize(
    ("loss", "params"),
    [
        # logaddexp of a far-apart pair: the small weight exp(b − z) ≈ 4e-18 must survive
        (
            "return xp.mean(xp.logaddexp(params['a'] + 40.0 + 0 * X[:, 0], params['b'] + 0 * y))",
            {"a": 0.0, "b": 0.0},
        ),
        # exp reused in its own backward rule: its forward error counts there too
        ("return xp.sum(xp.exp(params['a'] * X[:, 0] / 600))", {"a": 0.9541278616511861}),
    ],
)
def test_highprec_bounds_hold_where_review_found_false_alarms(tmp_path, loss, params):
    path = write(
        tmp_path, "loss.py", f"PARAMS = {params!r}\ndef loss(params, X, y, xp):\n    {loss}\n"
    )
    data = write(tmp_path, "one.csv", ONE_ROW)
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--loss",
            path,
            "--data",
            data,
            "--dtype",
            "float64",
            "-b",
            "torch-grad,jax-grad,jax-jit",
        ],
    )
    assert result.exit_code == 0, result.output


def test_logistic_far_from_the_boundary_agrees(tmp_path):
    data = write(tmp_path, "neg1.csv", "x,y\n-3,0\n")
    report = gradcmp.compare(
        data,
        model="logistic",
        params={"w": [5.0]},
        backends=["native", "numpy", "torch-grad", "jax-grad"],
        dtypes="float64",
    )
    assert {r.verdict for r in report.results} == {"agree"}, [r.why for r in report.results]


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
        "edge.py",
        f"PARAMS = {{'w': 0.0}}\ndef loss(params, X, y, xp):\n    return xp.mean({expression})\n",
    )
    result = CliRunner().invoke(cli, ["run", "--loss", path, "--dtype", "float64"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"gradcmp: error: {path}: no reference at these parameters")


def test_the_float64_fallback_differentiates_the_spec_not_a_side(tmp_path):
    path = write(
        tmp_path,
        "sinc.py",
        (  # sinc is in neither the reference's namespace nor the torch tracer's rules
            "PARAMS = {'w': 0.5}\n"
            "def loss(params, X, y, xp):\n"
            "    r = xp.sinc(params['w'] * X[:, 0]) - y\n"
            "    return xp.mean(r * r)\n"
            "def loss_torch(params, X, y):\n"
            "    import torch\n"
            "    r = torch.sinc(params['w'] * X[:, 0]) - y\n"
            "    return torch.mean(r * r) * 2  # planted bug on the torch side\n"
        ),
    )
    report = gradcmp.compare(
        gradcmp.data.bundled_path(),
        loss=path,
        backends=["torch-grad", "jax-grad"],
        dtypes="float64",
    )
    assert report.reference.name == "float64"
    judged = {r.backend: r.reference for r in report.results}
    assert judged == {"jax-grad": "float64", "torch-grad": "loss_torch"}  # its own graph
    errors = {r.backend: r.errors["loss"].rel for r in report.results}
    assert errors["jax-grad"] < 1e-15  # the spec's float64 autodiff is the jax row's
    # The torch side computes another function than the spec: their float64 rows say so.
    assert report.port.verdict == "different" and report.exit_code == 1
    assert report.port.note.startswith("loss_torch and loss compute different functions")


def test_complex_step_skips_a_partly_unsafe_loss(tmp_path):
    path = write(
        tmp_path,
        "l1.py",
        (
            "PARAMS = {'theta0': 0.5, 'theta1': -0.25}\n"
            "def loss(params, X, y, xp):\n"
            "    r = params['theta0'] + params['theta1'] * X[:, 0] - y\n"
            "    penalty = xp.abs(params['theta0']) + xp.abs(params['theta1'])\n"
            "    return xp.mean(r * r) / 2 + 0.1 * penalty\n"
        ),
    )
    report = gradcmp.compare(
        gradcmp.data.bundled_path(), loss=path, backends=["complex-step"], dtypes="float64"
    )
    (r,) = report.results
    assert r.status == "skipped" and r.note == "the loss is not complex-safe (it uses absolute)"


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
    path = write(tmp_path, "bad.py", text)
    result = CliRunner().invoke(cli, ["run", "--loss", path])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert fragment in line
