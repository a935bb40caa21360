"""gradcmp's pytest plugin: gradient checks in a project's own test suite.

Installed with gradcmp (entry point ``pytest11``), so every pytest run in an environment that
has gradcmp loads it; ``-p no:gradcmp`` turns it off.

    def test_my_loss(gradcmp_check):
        report = gradcmp_check("data.csv", loss="my_loss.py")   # raises unless they agree
        assert report.verdict == "agree"

    @pytest.mark.gradcmp(backends="native,torch-grad", dtypes="float64", strict=True)
    def test_port(gradcmp_check):
        gradcmp_check((X, y), loss="port.py")

- ``gradcmp_check(data, model=None, **options)`` takes the arguments of ``gradcmp.compare``
  and checks like ``gradcmp.testing.assert_gradients_agree``: it returns the Report, or fails
  the test with gradcmp's message (the offending rows), not with this plugin's source.
- ``@pytest.mark.gradcmp(backends=, dtypes=, strict=, accept=)`` sets defaults for that test
  (on a class, or a module's ``pytestmark``, for all of its tests; markers are merged per
  argument, the closest one first). An unknown argument or value fails the test's setup. An
  argument given as None is not set there: the next level's value applies.
- ``--gradcmp-backends A,B`` and ``--gradcmp-dtypes float32,float64`` set the defaults for the
  whole run; ``--gradcmp-report-dir DIR`` writes each check's JSON report (the JSON of
  ``gradcmp run --format json``) to ``DIR/<test node id>.json`` (``-2``, ``-3`` … for further
  checks in the same test), pass or fail, for CI to keep as artifacts. The name is the node id
  made a file name; where that loses characters of a parameter id, or two of the session's
  tests would share it, a short hash of the node id tells them apart (see ``report_name``).
- A check where no backend produced a result (every backend × dtype skipped) passes, as
  ``gradcmp run`` exits 0 on it, but warns (``gradcmp.testing.GradcmpWarning``), so that
  ``-W error`` fails it; ``strict=True`` fails it anyway.
- Precedence: arguments of the call, then the marker, then the command line, then gradcmp's
  own defaults.
- The pytest header shows gradcmp's environment fingerprint (versions, CPU, thread settings).

This module is imported at every pytest start-up: it imports no framework and not numpy (the
header reads versions from package metadata); gradcmp's API is imported when a check runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest

MARKER = "gradcmp"
MARKER_OPTIONS = ("backends", "dtypes", "strict", "accept")
# Environment variables that set a framework's or BLAS's thread count: they change the numbers'
# rounding (reduction order), so the header shows the ones that are set.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")

_REPORT_DIR = pytest.StashKey["Path | None"]()
# The session's report names, each with the node id that holds it: no report overwrites another's.
_REPORT_NAMES = pytest.StashKey["dict[str, str]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcmp", "gradcmp gradient checks (fixture gradcmp_check)")
    group.addoption(
        "--gradcmp-backends",
        metavar="A,B",
        help="default backends of gradcmp_check (gradcmp backends; default the seed's four)",
    )
    group.addoption(
        "--gradcmp-dtypes",
        metavar="D,E",
        help="default dtypes of gradcmp_check (default float32,float64)",
    )
    group.addoption(
        "--gradcmp-report-dir",
        metavar="DIR",
        help="write each gradcmp_check's JSON report to DIR/<test node id>.json",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registered here so that --strict-markers accepts it.
    config.addinivalue_line(
        "markers",
        f"{MARKER}(backends=None, dtypes=None, strict=None, accept=None): "
        "defaults of the gradcmp_check fixture for this test (None: not set here)",
    )
    # A misspelt option is an error before any test runs, not one failure per test. Parsing
    # imports gradcmp's backend registry (no framework), so only when the option is given.
    for option, kind in (("gradcmp_backends", "backends"), ("gradcmp_dtypes", "dtypes")):
        value = config.getoption(option)
        if value is not None:
            problem = _invalid(kind, value)
            if problem:
                raise pytest.UsageError(f"--{option.replace('_', '-')}: {problem}")
    directory = config.getoption("gradcmp_report_dir")
    if directory is not None:  # relative to where pytest was started, whatever a test chdirs to
        directory = Path(config.invocation_params.dir, directory)
    config.stash[_REPORT_DIR] = directory
    config.stash[_REPORT_NAMES] = {}


def pytest_report_header(config: pytest.Config) -> list[str]:
    from . import environment  # no framework, no numpy: package metadata and /proc only

    env = environment.describe()
    versions = ", ".join(
        f"{name} {env[name] or 'not installed'}" for name in ("numpy", "torch", "jax", "jaxlib")
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cpus = f"{usable} of {env['cpu_count']} CPUs" if usable else f"{env['cpu_count']} CPUs"
    threads = [f"{name}={os.environ[name]}" for name in THREAD_VARIABLES if name in os.environ]
    if "torch_threads" in env:  # only when something imported torch before the header
        threads.append(f"torch {env['torch_threads']}")
    return [
        f"gradcmp {env['gradcmp']}: {versions}",
        f"gradcmp machine: {env['cpu']}, {cpus}; threads: {', '.join(threads) or 'defaults'}",
    ]


def _invalid(kind: str, value) -> str | None:
    """What is wrong with a backends or dtypes value (a string or list of names), or None."""
    from .errors import GradcmpError

    parse = _parsers()[kind]
    try:
        parse(value if isinstance(value, str) else ",".join(value))
    except GradcmpError as exc:
        return str(exc)
    except (TypeError, AttributeError):
        return f"{value!r} is not a comma-separated string or a list of names"
    return None


def _parsers() -> dict:
    from .backends import parse_backends
    from .dtypes import parse_dtypes

    return {"backends": parse_backends, "dtypes": parse_dtypes}


def _marker_options(item: pytest.Item) -> dict:
    """The options of the item's gradcmp markers, merged per argument, the closest first (a
    test's own marker, then its class's, then its module's); one given as None is not set
    there (the next marker's, the command line's or gradcmp's default applies). A wrong one
    fails the test's setup with a message naming the marker, not with this plugin's source."""
    options: dict = {}
    for marker in item.iter_markers(MARKER):  # closest first
        where = f"@pytest.mark.{MARKER} on {item.nodeid}"
        if marker.args:
            pytest.fail(
                f"{where}: takes keyword arguments only, not {marker.args!r}", pytrace=False
            )
        unknown = sorted(set(marker.kwargs) - set(MARKER_OPTIONS))
        if unknown:
            known = ", ".join(MARKER_OPTIONS)
            pytest.fail(
                f"{where}: unknown argument {', '.join(unknown)} (known: {known})", pytrace=False
            )
        for kind in ("backends", "dtypes"):
            value = marker.kwargs.get(kind)
            if value is not None and (problem := _invalid(kind, value)):
                pytest.fail(f"{where}: {kind}: {problem}", pytrace=False)
        if marker.kwargs.get("strict") not in (None, True, False):
            strict = marker.kwargs["strict"]
            pytest.fail(f"{where}: strict={strict!r} is not True or False", pytrace=False)
        accept = marker.kwargs.get("accept")
        if accept is not None and not (isinstance(accept, float | int) and 0 <= accept < 1):
            pytest.fail(f"{where}: accept={accept!r} is not a number in [0, 1)", pytrace=False)
        for name, value in marker.kwargs.items():
            if value is not None:
                options.setdefault(name, value)
    return options


class GradcmpCheck:
    """The callable ``gradcmp_check`` returns: ``gradcmp.compare`` with this test's defaults
    (``.options``), checked like ``gradcmp.testing.assert_gradients_agree``."""

    def __init__(
        self,
        options: dict,
        report_dir: Path | None,
        nodeid: str,
        names: dict[str, str] | None = None,
    ):
        self.options = options
        self.report_dir = report_dir
        self.nodeid = nodeid
        self.reports: list[Path] = []  # the JSON reports written, in order
        # The session's report names (name → node id), shared by every test's checks.
        self.names = {} if names is None else names

    def __call__(self, data, model: str | None = None, **options):
        __tracebackhide__ = True  # a failure shows the test's line and gradcmp's message
        from .api import compare
        from .errors import GradcmpError
        from .testing import _warn_if_nothing_checked, failure_message

        # A marker option given as None is not set by the call: the test's default applies.
        given = {k: v for k, v in options.items() if not (k in MARKER_OPTIONS and v is None)}
        options = {**self.options, **given}
        try:
            report = compare(data, model, **options)
        except GradcmpError as exc:  # a bad path or option: its one line, at the user's line
            raise exc.with_traceback(None) from None
        if self.report_dir is not None:  # before the verdict: a failing check's report matters
            self._write(report)
        message = failure_message(report, options.get("strict", False))
        if message is not None:
            raise AssertionError(message)
        _warn_if_nothing_checked(report, stacklevel=2)  # at the test's line
        return report

    def _write(self, report) -> None:
        from .api import write_atomically
        from .report import render

        self.report_dir.mkdir(parents=True, exist_ok=True)
        name = report_name(self.nodeid)
        if self.names.setdefault(name, self.nodeid) != self.nodeid:  # another test's name
            name = f"{name}-{_short_hash(self.nodeid)}"
            self.names.setdefault(name, self.nodeid)
        if self.reports:
            name = f"{name}-{len(self.reports) + 1}"
        path = self.report_dir / f"{name}.json"
        write_atomically(path, render(report, "json"))
        self.reports.append(path)


def report_name(nodeid: str) -> str:
    """A file name for a test's report, the same in every run: the node id with ``::`` as
    ``__`` and the path's ``/`` as ``_``, and every other character outside
    ``[A-Za-z0-9_.=[]-]`` replaced by ``_``. Where that replaced one (parameter ids ``a/b``,
    ``a b`` and ``a_b`` would share a name) or the name is very long (shortened), a hash of the
    whole node id follows: ``test_p[a_b]-1f0c2e9a``. (Two tests whose ids differ only in
    ``::``/``/`` versus ``__``/``_`` still share one; the fixture adds the hash to the second
    of them in a session.)"""
    path, bracket, parameters = nodeid.partition("[")
    plain = path.replace("::", "__").replace("/", "_") + bracket + parameters
    name = re.sub(r"[^A-Za-z0-9_.=\[\]-]", "_", plain)
    if name != plain or len(name) > 150:
        name = f"{name[:140]}-{_short_hash(nodeid)}"
    return name


def _short_hash(nodeid: str) -> str:
    return hashlib.sha1(nodeid.encode()).hexdigest()[:8]


@pytest.fixture
def gradcmp_check(request: pytest.FixtureRequest) -> GradcmpCheck:
    """``gradcmp_check(data, model=None, **options)``: ``gradcmp.compare`` with the defaults of
    ``@pytest.mark.gradcmp`` and ``--gradcmp-backends``/``--gradcmp-dtypes``; returns the Report,
    or fails the test with gradcmp's message."""
    config = request.config
    options = {
        kind: config.getoption(f"gradcmp_{kind}")
        for kind in ("backends", "dtypes")
        if config.getoption(f"gradcmp_{kind}") is not None
    }
    options.update(_marker_options(request.node))
    return GradcmpCheck(
        options,
        config.stash.get(_REPORT_DIR, None),
        request.node.nodeid,
        config.stash.setdefault(_REPORT_NAMES, {}),
    )
