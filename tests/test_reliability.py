"""Reliability: every bad input answered in one line with its line number, binary formats held
to the same rules, backends isolated (timeout, Ctrl-C), and fuzzing for crashes."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcmp
from gradcmp import backends as backends_module
from gradcmp.cli import cli
from gradcmp.dtypes import FLOAT64


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


# (name, file bytes, the 1-based line the message names or None, a fragment of it)
REJECTED = [
    ("empty file", b"", None, "the file is empty"),
    ("only blank lines", b"\n\n  \n", None, "the file is empty"),
    ("header only", b"x,y\n", 1, "no data rows"),
    ("numeric first row", b"1,2\n3,4\n", 1, "numbers, not column names"),
    ("duplicate names", b"x,x,y\n1,2,3\n", 1, "appears twice"),
    ("empty name", b"x,,y\n1,2,3\n", 1, "has no name"),
    ("too few fields", b"x,y\n1,2\n3\n", 3, "1 field where the header has 2"),
    ("too many fields", b"x,y\n1,2,3\n", 2, "3 fields"),
    ("empty cell", b"x,y\n1,\n", 2, "an empty cell (write plain decimals"),
    ("NA", b"x,y\n1,NA\n", 2, "'NA' is not a decimal number"),
    ("null", b"x,y\n1,null\n", 2, "'null'"),
    ("None", b"x,y\n1,None\n", 2, "'None'"),
    ("NaN", b"x,y\n1,NaN\n", 2, "'NaN'"),
    ("nan", b"x,y\n1,nan\n", 2, "'nan'"),
    ("inf", b"x,y\n1,inf\n", 2, "'inf'"),
    ("-Infinity", b"x,y\n1,-Infinity\n", 2, "'-Infinity'"),
    ("overflow 1e999", b"x,y\n1,1e999\n", 2, "overflows float64"),
    ("underflow far below", b"x,y\n1,1e-99999\n", 2, "far below float64's range"),
    ("boolean true", b"x,y\n1,true\n", 2, "'true'"),
    ("boolean False", b"x,y\n1,False\n", 2, "'False'"),
    ("hex float", b"x,y\n1,0x1p3\n", 2, "'0x1p3'"),
    ("hex int", b"x,y\n1,0x10\n", 2, "'0x10'"),
    ("Fortran exponent", b"x,y\n1,1d5\n", 2, "'1d5'"),
    ("underscores", b"x,y\n1,1_000\n", 2, "'1_000'"),
    ("full-width digits", "x,y\n1,\uff11\uff12\n".encode(), 2, "is not a decimal number"),
    ("Arabic-Indic digits", "x,y\n1,\u0661\n".encode(), 2, "is not a decimal number"),
    ("Unicode minus", "x,y\n1,\u22122\n".encode(), 2, "is not a decimal number"),
    ("thousands separator", b"x,y\n1,1,000\n", 2, "3 fields"),
    ("decimal comma", b"x,y\n1,5;2,5\n", 2, "3 fields"),
    ("semicolon delimiter", b"x;y\n1;2\n", 1, "no column named 'y'"),
    ("tab delimiter", b"x\ty\n1\t2\n", 1, "no column named 'y'"),
    ("two decimal points", b"x,y\n1,1.2.3\n", 2, "'1.2.3'"),
    ("bare sign", b"x,y\n1,-\n", 2, "'-'"),
    ("bare point", b"x,y\n1,.\n", 2, "'.'"),
    ("exponent without digits", b"x,y\n1,1e\n", 2, "'1e'"),
    ("percent", b"x,y\n1,5%\n", 2, "'5%'"),
    ("currency", b"x,y\n1,$5\n", 2, "'$5'"),
    ("quoted number", b'x,y\n1,"2"\n', 2, "quoted values are text here"),
    ("comment line", b"x,y\n# a note\n1,2\n", 2, "'#' comment line"),
    ("invalid UTF-8", b"x,y\n1,\xff\n", 2, "not valid UTF-8"),
    ("UTF-16", "x,y\n1,2\n".encode("utf-16"), 1, "not valid UTF-8"),
    ("NUL byte", b"x,y\n1,\x002\n", 2, "NUL byte"),
    ("lone CR line ends", b"x,y\r1,2\r", 1, "carriage return inside a line"),
    ("no-break space", "x,y\n1,\u00a02\n".encode(), 2, "is not a decimal number"),
    ("form feed", b"x,y\n1,2\n3,\x0c4\n", 3, "is not a decimal number"),
    ("line separator U+2028", "x,y\n1,2\u20283\n".encode(), 2, "is not a decimal number"),
    ("missing target", b"a,b\n1,2\n", 1, "no column named 'y'"),
    ("target only", b"y\n1\n", 1, "no feature column"),
]


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"), REJECTED, ids=[r[0] for r in REJECTED]
)
def test_rejected_input_is_one_line_with_its_line_number(tmp_path, name, content, line, fragment):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    before = path.read_bytes()
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "-b", "native"])
    assert result.exit_code == 2, result.output
    (message,) = result.stderr.splitlines()
    where = f"{path}:{line}: " if line else f"{path}: "
    assert message.startswith(f"gradcmp: error: {where}"), message
    assert fragment in message
    assert "Traceback" not in result.output
    assert path.read_bytes() == before  # nothing the user gave is modified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]  # nor written beside


def test_there_are_at_least_40_cases():
    assert len(REJECTED) >= 40


@pytest.mark.parametrize(
    ("content", "dtype", "flag"),
    [
        # integers beyond 2**53 and decimals that round: accepted, the rounding reported
        (b"x,y\n9007199254740993,1\n2,3\n", "float64", "input rounding, float64: 1 of 6"),
        (b"x,y\n0.1,1\n2,3\n", "float64", "input rounding, float64: 1 of 6"),
        # finite in float64, not in float32: accepted, float32 skipped with the reason
        (b"x,y\n1e39,1\n2,3\n", "float32", "x row 1 = 1e+39 overflows float32"),
        # subnormal in float32: accepted; float32 cannot certify it (the W·η term)
        (b"x,y\n1,1e-40\n2,2e-40\n", "float32", "inconclusive"),
    ],
)
def test_accepted_and_flagged(tmp_path, content, dtype, flag):
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(
        cli, ["run", "--data", str(path), "-b", "native", "--dtype", dtype, "--format", "plain"]
    )
    assert result.exit_code == 0, result.output
    assert flag in result.output


def test_npy_npz_and_parquet(tmp_path):
    X = np.arange(1.0, 7.0)
    y = np.array([13.0, 14, 20, 21, 25, 30])
    np.save(tmp_path / "xy.npy", np.column_stack([X, y]))
    np.savez(tmp_path / "cols.npz", x=X, y=y)
    np.savez(tmp_path / "Xy.npz", X=X[:, None], y=y)
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": X, "y": y}), tmp_path / "xy.parquet")
    seed = gradcmp.compare(gradcmp.loading.data.bundled_path(), backends=["native"]).reference
    for name in ("xy.npy", "cols.npz", "Xy.npz", "xy.parquet"):
        report = gradcmp.compare(tmp_path / name, backends=["native"])
        assert report.reference.as_written == seed.as_written, name


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: np.save(p / "d.npy", np.array([1.0, 2.0])), "2-D array with at least 2"),
        (lambda p: np.save(p / "d.npy", np.array([[1.0, np.nan]])), "row 1 is nan: not finite"),
        (lambda p: np.save(p / "d.npy", np.array([[1, 2]], dtype=bool)), "is bool, not numbers"),
        (lambda p: np.save(p / "d.npy", np.zeros((0, 2))), "there are no rows"),
        (lambda p: np.savez(p / "d.npz", x=np.ones(3), y=np.ones(2)), "not 1-D of one length"),
        (lambda p: np.savez(p / "d.npz", x=np.ones(3)), "no column named 'y'"),
        (lambda p: np.savez(p / "d.npz", x=np.array(["a"]), y=np.ones(1)), "not numbers"),
        (lambda p: (p / "d.npz").write_bytes(b"PK not a zip"), "not a readable .npz"),
        (lambda p: (p / "d.npy").write_bytes(b"\x93NUMPY garbage"), "not a readable .npy"),
        (lambda p: (p / "d.parquet").write_bytes(b"PAR1 junk"), "not a readable Parquet"),
    ],
)
def test_bad_binary_files(tmp_path, make, fragment):
    make(tmp_path)
    (path,) = list(tmp_path.iterdir())
    if path.suffix == ".parquet":
        pytest.importorskip("pyarrow")
    result = CliRunner().invoke(cli, ["run", "--data", str(path), "-b", "native"])
    assert result.exit_code == 2, result.output
    (message,) = result.stderr.splitlines()
    assert message.startswith(f"gradcmp: error: {path}: ") and fragment in message


class Hangs:
    name = "hangs"
    description = "waits for ever"
    requires: tuple[str, ...] = ()
    dtypes = ("float64", "float32")
    release = threading.Event()

    def setup(self):
        pass

    def compute(self, problem, dtype):
        self.release.wait()  # never set: a hung backend
        raise AssertionError("unreachable")


class Interrupts(Hangs):
    name = "interrupts"

    def compute(self, problem, dtype):
        raise KeyboardInterrupt


@pytest.fixture
def misbehaving(monkeypatch):
    # Into the one registry every module shares (the runner, execute.py, the reference).
    for b in (Hangs(), Interrupts()):
        monkeypatch.setitem(backends_module.BACKENDS, b.name, b)
    yield
    Hangs.release.set()  # let the abandoned threads finish


def test_a_hung_backend_times_out_and_the_others_finish(misbehaving):
    result = CliRunner().invoke(
        cli,
        ["run", "-b", "native,hangs", "--dtype", "float64", "--timeout", "0.2", "--format", "json"],
    )
    assert result.exit_code == 3
    results = {r["backend"]: r for r in json.loads(result.output)["results"]}
    assert results["native"]["verdict"] == "agree"
    assert results["hangs"]["status"] == "failed"
    assert results["hangs"]["note"].startswith("timed out after 0.2 s")


def test_ctrl_c_ends_the_run_with_one_line_and_130(misbehaving):
    result = CliRunner().invoke(cli, ["run", "-b", "native,interrupts"])
    assert result.exit_code == 130
    assert result.stderr == "gradcmp: error: interrupted\n"


def test_thread_counts_are_left_alone(seed_problem):
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    gradcmp.judging.runner.run(seed_problem, ["torch-grad", "jax-grad"], [FLOAT64])
    assert torch.get_num_threads() == before


@settings(max_examples=150)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.text(alphabet="xy0123456789.,-+eE \n\r\t#\"'abc\x00\u00a0", max_size=120).map(
            lambda s: s.encode("utf-8")
        ),
        st.text(alphabet="0123456789.,-+eE\n", max_size=80).map(lambda s: ("x,y\n" + s).encode()),
    )
)
def test_any_bytes_never_crash(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("fuzz") / "data.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(
        cli, ["run", "--data", str(path), "-b", "native,numpy", "--dtype", "float64"]
    )
    assert result.exit_code in (0, 1, 2), (content, result.output)
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.splitlines()) == 1


@settings(max_examples=100)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=False, allow_infinity=False, width=64),
            st.decimals(allow_nan=False, allow_infinity=False, places=30).map(str),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_values_round_trip_exactly(tmp_path_factory, rows):
    # A float written with repr reads back as the same float; a long decimal reads back as
    # its correctly rounded float64, with its exact value kept.
    from fractions import Fraction

    path = tmp_path_factory.mktemp("rt") / "data.csv"
    path.write_text("x,y\n" + "".join(f"{x!r},{d}\n" for x, d in rows))
    dataset = gradcmp.loading.data.load(path)
    for i, (x, d) in enumerate(rows):
        assert dataset.X[i, 0] == x
        assert dataset.y[i] == float(Fraction(d))
        exact = dataset.all_decimal_cells().get((i, "y"), Fraction(dataset.y[i]))
        assert exact == Fraction(d)


@settings(max_examples=20)
@given(st.integers(-30, 30), st.lists(st.integers(-1000, 1000), min_size=2, max_size=12))
def test_scaling_by_a_power_of_two_scales_every_backend_exactly(k, ys):
    # Scaling y and θ by 2**k scales every residual by 2**k: every rounding scales with it
    # (no overflow or underflow here), so the loss scales by 4**k and the gradient by 2**k,
    # bit for bit, in every backend.
    x = np.arange(1.0, len(ys) + 1)
    y = np.array(ys, dtype=float)
    theta = {"theta0": 0.75, "theta1": -1.25}
    backends = ["native", "numpy", "torch-grad", "jax-grad"]
    base = gradcmp.compare((x, y), params=theta, backends=backends)
    s = 2.0**k
    scaled = gradcmp.compare(
        (x, y * s), params={n: v * s for n, v in theta.items()}, backends=backends
    )
    for a, b in zip(base.results, scaled.results):
        assert b.loss == a.loss * s * s, (a.backend, a.dtype)
        assert b.grads == {n: g * s for n, g in a.grads.items()}, (a.backend, a.dtype)


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
