"""gradcmp's pytest plugin (gradcmp/pytest_plugin.py), as users run it: small test files run by
pytest through ``pytester``. A run that computes gradients is a subprocess (a fresh process, as
a user's; and nothing a check imports is dropped from this one); a run that stops before any
check is in-process (quick). Checks use native and numpy, which import no framework."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

import gradcmp
from gradcmp.pytest_plugin import GradcmpCheck, report_name
from gradcmp.testing import assert_gradients_agree

pytest_plugins = ["pytester"]

# The seed's model as a loss file, with the 1/n of the mean lost in its hand-derived gradient.
PLANTED = '''
"""Least squares; grad_native sums where the mean belongs."""

PARAMS = {"theta0": 0.0, "theta1": 0.0}


def loss(params, X, y, xp):
    r = params["theta0"] + params["theta1"] * X[:, 0] - y
    return xp.mean(r * r) / 2


def grad_native(params, X, y):
    r = [params["theta0"] + params["theta1"] * row[0] - t for row, t in zip(X, y)]
    return {"theta0": sum(r), "theta1": sum(e * row[0] for e, row in zip(r, X))}
'''

# As the repository's own configuration: a warning or an unregistered marker is an error.
STRICT_INI = "[pytest]\naddopts = --strict-markers\nfilterwarnings = error\n"

USER_TESTS = """
import os

import pytest

import gradcmp.data
from gradcmp.testing import assert_gradients_agree

DATA = gradcmp.data.bundled_path()
PLANTED = os.path.join(os.path.dirname(__file__), "planted.py")


def ran(report):
    return sorted((r.backend, r.dtype) for r in report.results)


def test_command_line_defaults(gradcmp_check):
    report = gradcmp_check(DATA)
    assert report.verdict == "agree"
    assert ran(report) == [(b, d) for b in ("native", "numpy") for d in ("float32", "float64")]


@pytest.mark.gradcmp(dtypes="float64")
class TestMarker:
    def test_class_marker(self, gradcmp_check):
        assert ran(gradcmp_check(DATA)) == [("native", "float64"), ("numpy", "float64")]

    @pytest.mark.gradcmp(backends=["native"])
    def test_markers_merge_and_a_call_overrides_them(self, gradcmp_check):
        assert gradcmp_check.options == {"backends": ["native"], "dtypes": "float64"}
        assert ran(gradcmp_check(DATA)) == [("native", "float64")]
        assert ran(gradcmp_check(DATA, dtypes="float32")) == [("native", "float32")]


def test_planted(gradcmp_check):
    gradcmp_check(DATA, loss=PLANTED, backends="native", dtypes="float64")


def test_no_such_file(gradcmp_check):
    gradcmp_check("no-such.csv")


@pytest.mark.gradcmp(dtype="float64")
def test_misspelt_marker(gradcmp_check):
    raise AssertionError("not reached: the marker fails the setup")


@pytest.mark.gradcmp(backends="torch-grd")
def test_unknown_backend_in_marker(gradcmp_check):
    raise AssertionError("not reached: the marker fails the setup")


@pytest.mark.gradcmp(accept=2)
def test_accept_out_of_range(gradcmp_check):
    raise AssertionError("not reached: the marker fails the setup")
"""


def test_header_shows_the_fingerprint_and_start_up_imports_no_framework(pytester):
    """Fresh process: the header is read from package metadata, so collecting and starting
    the tests has imported neither torch nor jax."""
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(
        test_start="import sys\n\n\n"
        "def test_no_framework_yet():\n"
        '    assert not {"torch", "jax", "jaxlib"} & set(sys.modules)\n'
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1)
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in ("numpy", "torch", "jax", "jaxlib"))
    result.stdout.fnmatch_lines(
        [f"gradcmp {gradcmp.__version__}: {versions}", "gradcmp machine: *CPUs; threads: *"]
    )


def test_checks_markers_failures_and_report_files(pytester):
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(planted=PLANTED, test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(
        "--gradcmp-backends", "native,numpy", "--gradcmp-report-dir", "reports"
    )
    result.assert_outcomes(passed=3, failed=2, errors=3)
    output = result.stdout.str()

    # The planted bug: the user's line and gradcmp's message, not the plugin's source.
    result.stdout.fnmatch_lines(
        [
            "*gradcmp_check(DATA, loss=PLANTED, backends=*",
            "E * gradients do not agree (verdict disagree) for model planted.py on *",
            "E * native float64 (grad_native): disagree: theta0 *",
        ]
    )
    failure = output.split(" test_planted ")[1].split("short test summary")[0]
    assert "def test_planted(gradcmp_check):" in failure  # the section is the right one
    for source in ("compare(data, model", "raise AssertionError"):
        assert source not in failure
    assert "pytest_plugin.py" not in output and "gradcmp/api.py" not in output  # no frame of ours

    # gradcmp's own error (a bad path or option): its one line at the user's line.
    result.stdout.fnmatch_lines(
        [
            '>       gradcmp_check("no-such.csv")',
            "E       gradcmp.errors.InputError: no-such.csv: no such file *",
            "test_user.py:*: InputError",
        ]
    )

    # A wrong marker: one line naming the marker, at the setup of its own test.
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.gradcmp on test_user.py::test_misspelt_marker: unknown argument "
            "dtype (known: backends, dtypes, strict, accept)",
            "*@pytest.mark.gradcmp on test_user.py::test_unknown_backend_in_marker: backends: "
            "unknown backend 'torch-grd' (choose from *",
            "*@pytest.mark.gradcmp on test_user.py::test_accept_out_of_range: "
            "accept=2 is not a number in [[]0, 1)",
        ]
    )
    assert "pytest.fail(" not in output

    # A JSON report per check, named after the test, the failing one included.
    reports = {p.name: json.loads(p.read_text()) for p in (pytester.path / "reports").iterdir()}
    assert sorted(reports) == [
        "test_user.py__TestMarker__test_class_marker.json",
        "test_user.py__TestMarker__test_markers_merge_and_a_call_overrides_them-2.json",
        "test_user.py__TestMarker__test_markers_merge_and_a_call_overrides_them.json",
        "test_user.py__test_command_line_defaults.json",
        "test_user.py__test_planted.json",
    ]
    planted = reports["test_user.py__test_planted.json"]
    assert (planted["verdict"], planted["exit_code"], planted["model"]) == (
        "disagree",
        1,
        "planted.py",
    )
    second = reports[
        "test_user.py__TestMarker__test_markers_merge_and_a_call_overrides_them-2.json"
    ]
    assert (second["backends"], second["dtypes"]) == (["native"], ["float32"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--gradcmp-dtypes", "float33", "--gradcmp-dtypes: unknown dtype 'float33' (choose from *"),
        ("--gradcmp-backends", "nope", "--gradcmp-backends: unknown backend 'nope' (choose from *"),
    ],
)
def test_a_wrong_option_value_is_a_usage_error(pytester, option, value, message):
    """In-process: the run stops in pytest_configure, before any check."""
    pytester.makepyfile(test_x="def test_x():\n    assert True\n")
    result = pytester.runpytest_inprocess(option, value)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_no_gradcmp_turns_the_plugin_off(pytester):
    """In-process: the fixture is not found, so no check runs."""
    pytester.makepyfile(test_x="def test_x(gradcmp_check):\n    assert False\n")
    result = pytester.runpytest_inprocess("-p", "no:gradcmp")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'gradcmp_check' not found*"])
    assert "gradcmp machine:" not in result.stdout.str()


def test_the_check_fails_exactly_when_assert_gradients_agree_does(tmp_path):
    """The fixture applies assert_gradients_agree's rule to a Report it also writes: the same
    verdict and the same message."""
    planted = tmp_path / "planted.py"
    planted.write_text(PLANTED)
    check = GradcmpCheck({"backends": "native", "dtypes": "float64"}, tmp_path / "out", "t::x")
    data = gradcmp.data.bundled_path()
    assert check(data).verdict == assert_gradients_agree(data, **check.options).verdict == "agree"
    with pytest.raises(AssertionError) as ours:
        check(data, loss=planted)
    with pytest.raises(AssertionError) as theirs:
        assert_gradients_agree(data, loss=planted, **check.options)
    assert str(ours.value) == str(theirs.value)
    assert [p.name for p in check.reports] == ["t__x.json", "t__x-2.json"]


def test_report_names_are_file_names():
    assert report_name("tests/a.py::TestC::test_d[float32-x y]") == (
        "tests_a.py__TestC__test_d[float32-x_y]"
    )
    long = report_name("t.py::test_" + "x" * 300)
    assert len(long) == 149 and long != report_name("t.py::test_" + "x" * 301)
