"""The command line through click's CliRunner: output, formats and every exit code."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gradcmp import backends as backends_module
from gradcmp.backends.base import Output
from gradcmp.cli import cli
from gradcmp.errors import EXIT_BACKEND, EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_USAGE


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_run_on_the_seed_prints_reference_and_round_trip_digits():
    result = invoke("run", "-b", "native", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    assert "2731/12" in result.output
    assert "0.667 ulp" in result.output
    # The computed values are the detail (the default line per backend gives its error).
    assert "-81.66666666666666" not in result.output
    detail = invoke("run", "-b", "native", "--dtype", "float64", "--detail")
    assert "-81.66666666666666" in detail.output  # native float64, as the seed printed


def test_json_report_shape_and_values():
    result = invoke("run", "-b", "native", "--format", "json", "--param", "theta0=0.5")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["model"] == "linear"
    assert report["verdict"] == "agree" and report["exit_code"] == 0
    assert report["data"] | {"sha256": None} == {
        "path": "xy.csv (bundled)",
        "rows": 6,
        "features": 1,
        "feature_names": ["x"],
        "target": "y",
        "sha256": None,
    }
    assert len(report["data"]["sha256"]) == 64
    assert report["params"] == {"theta0": 0.5, "theta1": 0.0}
    # exact, by hand: at θ0 = 1/2, θ1 = 0, r = 1/2 − y, Σr = 3 − 123, Σr·x = 21/2 − 490.
    assert report["reference"]["exact"]["grads"] == {"theta0": "-20", "theta1": "-959/12"}
    assert [(r["backend"], r["dtype"], r["status"]) for r in report["results"]] == [
        ("native", "float32", "ok"),
        ("native", "float64", "ok"),
    ]
    for r in report["results"]:
        assert set(r["errors"]) == {"loss", "theta0", "theta1"}
        assert set(r["errors"]["loss"]) == {
            "abs",
            "rel",
            "ulp",
            "bound",
            "ratio",
            "magnitude",
            "resolution",
        }
        assert r["verdict"] == "agree" and r["why"] == ""
        assert r["seconds"] >= 0
    assert set(report["timings"]) >= {"load", "reference", "setup"}
    assert report["environment"]["numpy"]


def test_output_file_is_written(tmp_path):
    out = tmp_path / "report.json"
    result = invoke("run", "-b", "native", "--format", "json", "--output", str(out))
    assert result.exit_code == 0
    assert result.output == ""
    assert json.loads(out.read_text())["model"] == "linear"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_table_to_file_is_plain_text(tmp_path):
    out = tmp_path / "table.txt"
    assert invoke("run", "-b", "native", "--output", str(out)).exit_code == 0
    text = out.read_text()
    assert "\x1b[" not in text and "2731/12" in text


def test_data_and_target_options(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,t\n1,2,3\n2,1,1\n4,0.5,2\n")
    result = invoke("run", "--data", str(path), "--target", "t", "-b", "native", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report["params"]) == ["theta0", "theta1[0]", "theta1[1]"]
    assert report["input_rounding"]["float64"]["rounded"] == 0


def test_input_rounding_is_reported(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0.1,1\n2,0.3\n")
    result = invoke("run", "--data", str(path), "-b", "native", "--format", "json")
    rounding = json.loads(result.output)["input_rounding"]
    assert rounding["float64"]["rounded"] == 2 and rounding["float32"]["rounded"] == 2
    assert 0 < rounding["float64"]["max_rel"] <= 2.0**-53
    assert 0 < rounding["float32"]["max_rel"] <= 2.0**-24
    table = invoke("run", "--data", str(path), "-b", "native").output
    assert "input rounding, float32: 2 of 6 values rounded" in table


def test_backends_and_models_commands():
    listing = invoke("backends")
    assert listing.exit_code == 0
    for name in ("exact", "native", "torch-grad", "torch-backward", "jax-grad"):
        assert name in listing.output
    models = invoke("models")
    assert models.exit_code == 0 and "linear" in models.output and "theta1" in models.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "-b", "nope"], "unknown backend 'nope'"),
        (["run", "--dtype", "float8"], "unknown dtype 'float8'"),
        (["run", "--data", "missing.csv"], "missing.csv: no such file"),
        (["run", "--param", "theta1"], "is not NAME=VALUE"),
        (["run", "--param", "theta1=x"], "not a finite decimal"),
        (["run", "--model", "quadratic"], "unknown model 'quadratic'"),
        (["run", "--format", "xml"], "Invalid value for '--format'"),
        (["run", "--no-such-option"], "No such option"),
        (["no-such-command"], "No such command"),
        (["run", "--target", "z"], "no column named 'z'"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args, fragment):
    result = invoke(*args)
    assert result.exit_code == EXIT_USAGE
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradcmp: error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output


class Broken:
    name = "broken"
    description = "raises"
    requires: tuple[str, ...] = ()
    dtypes = ("float64", "float32")

    def setup(self):
        pass

    def compute(self, problem, dtype):
        raise ZeroDivisionError("planted\nsecond line")


class Missing(Broken):
    name = "missing"
    requires = ("gradcmp_no_such_framework",)


class WrongShape(Broken):
    name = "wrong-shape"

    def compute(self, problem, dtype):
        return Output(0.0, {"theta0": [1.0, 2.0], "theta1": 0.0})


@pytest.fixture
def planted(monkeypatch):
    # Into the one registry every module shares (the runner, execute.py, the reference).
    for b in (Broken(), Missing(), WrongShape()):
        monkeypatch.setitem(backends_module.BACKENDS, b.name, b)


@pytest.mark.parametrize(
    ("name", "status", "note"),
    [
        ("broken", "failed", "ZeroDivisionError: planted"),
        ("missing", "skipped", "gradcmp_no_such_framework not installed"),
        ("wrong-shape", "failed", "gradient of theta0 has shape (2,), expected ()"),
    ],
)
def test_requested_backend_missing_or_failed_exits_3(planted, name, status, note):
    result = invoke("run", "-b", f"native,{name}", "--format", "json")
    assert result.exit_code == EXIT_BACKEND
    report = json.loads(result.output)
    by_backend = {(r["backend"], r["dtype"]): r for r in report["results"]}
    assert by_backend[("native", "float64")]["status"] == "ok"  # the others still run
    assert by_backend[(name, "float64")]["status"] == status
    assert by_backend[(name, "float64")]["note"].startswith(note)


def test_the_verdict_line_counts_failed_backends_too(planted):
    """A run that exits 3 does not end on a bare "verdict: agree (2 agree)"."""
    result = invoke("run", "-b", "native,broken", "--format", "plain")
    assert result.exit_code == EXIT_BACKEND
    assert "verdict: agree (2 agree, 2 failed)" in result.output


def test_internal_error_exit_70_one_line_traceback_only_with_debug(monkeypatch):
    import gradcmp.api

    def explode(*args, **kwargs):
        raise KeyError("planted")

    monkeypatch.setattr(gradcmp.api, "run_from_options", explode)
    result = invoke("run")
    assert result.exit_code == EXIT_INTERNAL
    assert result.stderr.startswith("gradcmp: error: internal error: KeyError")
    assert "this is a bug in gradcmp" in result.stderr and "Traceback" not in result.stderr
    debug = invoke("run", "--debug")
    assert debug.exit_code == EXIT_INTERNAL and "Traceback" in debug.stderr


def test_version_and_help():
    assert invoke("--version").output.startswith("gradcmp, version ")
    assert "Compute loss and gradient" in invoke("run", "--help").output


def test_disagree_exits_1_and_says_why(buggy_model):
    result = invoke("run", "--model", buggy_model, "-b", "native,torch-grad", "--format", "plain")
    assert result.exit_code == 1
    assert "verdict: disagree (2 agree, 2 disagree)" in result.output
    assert "torch-grad float64: disagree: theta0 is off by 20.5 (rel 1)" in result.output


def test_disagree_wins_over_a_failed_backend(buggy_model, planted):
    result = invoke("run", "--model", buggy_model, "-b", "torch-grad,broken")
    assert result.exit_code == 1


def big_csv(tmp_path):
    # 200 000 rows: float32's bound passes 1 % of M (γ_n(2**-24) ≈ n·6e-8), float64's does not.
    path = tmp_path / "big.csv"
    rows = "".join(f"{i % 1000},{(7 * i) % 1013}\n" for i in range(200_000))
    path.write_text("x,y\n" + rows)
    return path


def test_inconclusive_warns_exit_0_and_exit_4_under_strict(tmp_path):
    path = str(big_csv(tmp_path))
    args = ["run", "--data", path, "-b", "native", "--dtype", "float32", "--format", "json"]
    report = json.loads(invoke(*args).output)
    assert report["verdict"] == "inconclusive" and report["exit_code"] == 0
    assert "1.21% of its magnitude" in report["results"][0]["why"]
    assert invoke(*args).exit_code == 0
    assert invoke(*args, "--strict").exit_code == EXIT_INCONCLUSIVE


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
