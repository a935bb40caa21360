"""--save-baseline / --baseline: what changed since a saved run."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gradcmp.cli import cli

RUN = ("run", "-b", "native", "--format", "json")


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def save(tmp_path, *extra):
    path = tmp_path / "base.json"
    assert invoke(*RUN, *extra, "--save-baseline", str(path)).exit_code == 0
    return path


def test_same_run_is_same(tmp_path):
    path = save(tmp_path)
    report = json.loads(invoke(*RUN, "--baseline", str(path)).output)
    assert report["baseline"]["verdict"] == "same"
    assert {c["status"] for c in report["baseline"]["changes"]} == {"same"}


def test_a_moved_value_is_changed_with_its_ulps(tmp_path):
    # As after a framework upgrade: native float32 θ1 was one float32 step away in the baseline.
    path = save(tmp_path)
    saved = json.loads(path.read_text())
    (old,) = [r for r in saved["results"] if r["dtype"] == "float32"]
    old["grads"]["theta1"] = -81.66667938232422  # the float32 below -81.66667175292969
    path.write_text(json.dumps(saved))
    result = invoke("run", "-b", "native", "--baseline", str(path))
    assert result.exit_code == 0
    assert "baseline " + str(path) + ": changed (1 changed, 1 same)" in result.output
    assert "native float32: changed (agree → agree, moved 1 ulp: theta1" in result.output


def test_regressed_and_improved(tmp_path):
    path = save(tmp_path)
    saved = json.loads(path.read_text())
    saved["results"][0]["verdict"] = "disagree"
    saved["results"][1]["status"] = "failed"
    path.write_text(json.dumps(saved))
    report = json.loads(invoke(*RUN, "--baseline", str(path)).output)
    assert [c["status"] for c in report["baseline"]["changes"]] == ["improved", "improved"]
    # Now the other way round: the saved run agreed; this one has a backend that is gone.
    path = save(tmp_path)
    report = json.loads(invoke(*RUN, "--dtype", "float64", "--baseline", str(path)).output)
    statuses = {(c["dtype"], c["status"]) for c in report["baseline"]["changes"]}
    assert statuses == {("float32", "gone"), ("float64", "same")}


def test_baseline_of_another_problem_is_refused(tmp_path):
    path = save(tmp_path)
    result = invoke(*RUN, "--param", "theta0=1", "--baseline", str(path))
    assert result.exit_code == 2
    assert "the baseline is for another problem (not the same params)" in result.stderr
    other = tmp_path / "other.csv"
    other.write_text("x,y\n1,2\n")
    result = invoke(*RUN, "--data", str(other), "--baseline", str(path))
    assert result.exit_code == 2 and "other data" in result.stderr


def test_unreadable_baselines(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "results": [\n}')
    result = invoke(*RUN, "--baseline", str(bad))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"gradcmp: error: {bad}:3: not JSON")
    bad.write_text("[]")
    assert "not a gradcmp JSON report" in invoke(*RUN, "--baseline", str(bad)).stderr
    assert "no such file" in invoke(*RUN, "--baseline", str(tmp_path / "nope")).stderr


def test_malformed_baseline_entries(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"results": [{"backend": "native"}]}))
    result = invoke("run", "-b", "native", "--baseline", str(path))
    assert result.exit_code == 2 and "not a gradcmp JSON report" in result.stderr
