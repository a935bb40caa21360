"""gradcmp's pytest plugin (gradcmp/pytest_plugin.py), as users run it: small test files run by
pytest through ``pytester``. A run that computes gradients is a subprocess (a fresh process, as
a user's; and nothing a check imports is dropped from this one); a run that stops before any
check is in-process (quick). Checks use native and numpy, which import no framework."""

from __future__ import annotations

import json
import re
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

import gradcmp.loading.data
from gradcmp.testing import assert_gradients_agree

DATA = gradcmp.loading.data.bundled_path()
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
    data = gradcmp.loading.data.bundled_path()
    assert check(data).verdict == assert_gradients_agree(data, **check.options).verdict == "agree"
    with pytest.raises(AssertionError) as ours:
        check(data, loss=planted)
    with pytest.raises(AssertionError) as theirs:
        assert_gradients_agree(data, loss=planted, **check.options)
    assert str(ours.value) == str(theirs.value)
    assert [p.name for p in check.reports] == ["t__x.json", "t__x-2.json"]


def test_report_names_are_file_names():
    assert report_name("tests/a.py::TestC::test_d[float32-x_y]") == (
        "tests_a.py__TestC__test_d[float32-x_y]"
    )
    long = report_name("t.py::test_" + "x" * 300)
    assert len(long) == 149 and long != report_name("t.py::test_" + "x" * 301)


def test_parameter_ids_that_lose_characters_get_a_hash_the_same_in_every_run():
    """``a/b``, ``a b`` and ``a_b`` would all be ``a_b``: the two that lost a character are told
    apart by a hash of the node id (a function of the id alone: the same in every run)."""
    ids = [f"tests/t.py::test_p[{tag}-float32]" for tag in ("a/b", "a_b", "a b")]
    names = [report_name(nodeid) for nodeid in ids]
    assert len(set(names)) == 3
    assert names[1] == "tests_t.py__test_p[a_b-float32]"
    for name in (names[0], names[2]):
        assert re.fullmatch(r"tests_t\.py__test_p\[a_b-float32\]-[0-9a-f]{8}", name)
    assert names == [report_name(nodeid) for nodeid in ids]


def test_two_tests_of_a_session_never_share_a_report_file(tmp_path):
    """``tests/a/b.py`` and ``tests/a_b.py`` both make ``tests_a_b.py__test_x``: within the
    session (the names the checks share) the second test's reports get the hash."""
    names: dict[str, str] = {}
    data, options = gradcmp.loading.data.bundled_path(), {"backends": "native", "dtypes": "float64"}
    first = GradcmpCheck(options, tmp_path, "tests/a/b.py::test_x", names)
    second = GradcmpCheck(options, tmp_path, "tests/a_b.py::test_x", names)
    for check in (first, second, first, second):
        check(data)
    plain = "tests_a_b.py__test_x"
    assert [p.name for p in first.reports] == [f"{plain}.json", f"{plain}-2.json"]
    (one, two) = (p.name for p in second.reports)
    assert re.fullmatch(r"tests_a_b\.py__test_x-[0-9a-f]{8}\.json", one)
    assert two == one.replace(".json", "-2.json")
    assert len(list(tmp_path.iterdir())) == 4
    again = GradcmpCheck(options, tmp_path, "tests/a_b.py::test_x", {})  # another session
    again(data)
    assert again.reports[0].name == f"{plain}.json"  # alone, the plain name


def test_parametrised_checks_write_one_report_each(pytester):
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(
        test_p="""
import pytest

import gradcmp.loading.data


@pytest.mark.parametrize("tag", ["a/b", "a_b", "a b"])
def test_p(gradcmp_check, tag):
    gradcmp_check(gradcmp.loading.data.bundled_path(), backends="native", dtypes="float64")
"""
    )
    result = pytester.runpytest_subprocess("--gradcmp-report-dir", "reports")
    result.assert_outcomes(passed=3)
    reports = sorted(p.name for p in (pytester.path / "reports").iterdir())
    assert len(reports) == 3 and "test_p.py__test_p[a_b].json" in reports


def test_a_marker_argument_given_as_none_is_not_set_there(pytester):
    """In-process (no check runs): None falls through to the next marker, then the command
    line; it never resets an argument to gradcmp's default."""
    pytester.makeini(STRICT_INI)
    pytester.makepyfile(
        test_module_marker="""
import pytest

pytestmark = pytest.mark.gradcmp(backends="native", dtypes="float64", strict=True)


@pytest.mark.gradcmp(backends=None, dtypes=None, strict=None, accept=None)
def test_none_is_not_set(gradcmp_check):
    assert gradcmp_check.options == {"backends": "native", "dtypes": "float64", "strict": True}
""",
        test_command_line="""
import pytest


@pytest.mark.gradcmp(backends="numpy", dtypes=None)
def test_the_command_line_under_a_none(gradcmp_check):
    assert gradcmp_check.options == {"backends": "numpy", "dtypes": "float32"}
""",
    )
    result = pytester.runpytest_inprocess("--gradcmp-dtypes", "float32")
    result.assert_outcomes(passed=2)


def test_a_call_argument_given_as_none_is_not_set_there():
    check = GradcmpCheck({"backends": "native", "dtypes": "float64"}, None, "t::x")
    report = check(gradcmp.loading.data.bundled_path(), backends=None, dtypes=None, strict=None)
    assert [(r.backend, r.dtype) for r in report.results] == [("native", "float64")]


def test_a_check_that_checks_nothing_warns_so_that_filterwarnings_error_fails_it(pytester):
    """Every backend × dtype skipped: the run exits 0, so the check passes, but it warns at the
    test's line with the skips' notes; the repository's own ``filterwarnings = error`` fails it."""
    pytester.makepyfile(
        test_nothing="""
from gradcmp.loading.data import bundled_path


def test_nothing(gradcmp_check):
    report = gradcmp_check(bundled_path(), backends="finite-diff", dtypes="float32")
    assert report.verdict == "inconclusive"
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*/test_nothing.py:5: GradcmpWarning: gradcmp checked nothing for model linear on *: "
            "no backend produced a result, so the check passed without comparing a gradient:",
            "    finite-diff float32: skipped: finite-diff does not compute in float32",
        ]
    )
    pytester.makeini(STRICT_INI)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       report = gradcmp_check(*",
            "E       gradcmp.testing.GradcmpWarning: gradcmp checked nothing for model linear *",
            "test_nothing.py:5: GradcmpWarning",
        ]
    )
    assert "pytest_plugin.py" not in result.stdout.str()
