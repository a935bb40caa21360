"""The C reader's fast path against the pure-Python reader: the same values to the bit, the
same decimal cells, the same error message, on generated files and on the cells where they once
parted (exponents of 7+ digits, a long decimal past the exact-value exponent limit, numbers of
more than 4300 digits), which are read alike or refused alike, never a crash. (Both apply
csvfile.py's rules; the C reader only reads faster.)"""

from __future__ import annotations

import math
from fractions import Fraction
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcmp.errors import InputError
from gradcmp.loading import csvrows, data

pytestmark = pytest.mark.skipif(data._fastcsv is None, reason="the C reader is not built")

digits = st.text("0123456789", min_size=1, max_size=25)
number = st.builds(
    lambda sign, whole, point, frac, exp: sign + whole + point + frac + exp,
    st.sampled_from(["", "-", "+"]),
    st.one_of(st.just(""), digits),
    st.sampled_from(["", "."]),
    st.one_of(st.just(""), digits),
    st.one_of(
        st.just(""),
        st.builds(
            lambda e, s, n: e + s + str(n),
            st.sampled_from("eE"),
            st.sampled_from(["", "+", "-"]),
            st.one_of(st.integers(0, 30), st.integers(0, 400)),
        ),
    ),
)
floats = st.floats(allow_nan=False, allow_infinity=False).map(repr)
cell = st.one_of(floats, number, st.integers(-(10**25), 10**25).map(str))
# Junk the reader must refuse in the same words; one such cell in a quarter of the files.
junk = st.sampled_from(["", " ", "nan", "inf", "1e", "1.2.3", "--1", '"2"', "#3", "0x10", "1_0"])
blank = st.sampled_from(["", " ", "\t", "  "])


@st.composite
def csv_files(draw):
    ncols = draw(st.integers(2, 4))
    header = ["y", *(f"x{j}" for j in range(ncols - 1))]
    rows = draw(st.lists(st.lists(cell, min_size=ncols, max_size=ncols), min_size=1, max_size=8))
    if draw(st.integers(0, 3)) == 0:
        row = draw(st.integers(0, len(rows) - 1))
        rows[row][draw(st.integers(0, ncols - 1))] = draw(junk)
    lines = [",".join(header)]
    for row in rows:
        cells = [draw(blank) + c + draw(blank) for c in row]
        if draw(st.integers(0, 20)) == 0:
            cells = cells[:-1]  # a short row now and then
        lines.append(",".join(cells))
        if draw(st.integers(0, 10)) == 0:
            lines.append(draw(blank))  # a blank line
    ending = draw(st.sampled_from(["\n", "\r\n"]))
    return (ending.join(lines) + draw(st.sampled_from(["", ending]))).encode()


def read(reader, raw: bytes):
    try:
        return reader(raw, "y", "f.csv")
    except InputError as exc:
        return str(exc)


def both(raw: bytes):
    """(fast, slow); the fast reader also run on the file cut into many parts (threads) with
    a tiny first guess of its rows (so it runs out of room and goes on), which must change
    nothing."""
    fast = read(data._load_csv_fast, raw)
    with (
        patch.object(csvrows, "PARALLEL_BYTES", 8),
        patch.object(csvrows, "_usable_cpus", lambda: 5),
        patch.object(csvrows, "_first_guess", lambda part_bytes, bytes_per_line: 1),
    ):
        split = read(data._load_csv_fast, raw)
    assert same_outcome(fast, split)
    return fast, read(data._load_csv_python, raw)


def same_outcome(a, b) -> bool:
    if isinstance(a, data.Dataset) and isinstance(b, data.Dataset):
        return (
            same_bits(a.X, b.X)
            and same_bits(a.y, b.y)
            and a.all_decimal_cells() == b.all_decimal_cells()
        )
    return a == b


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.tobytes() == b.tobytes()


# Drawing a file is most of an example's time. Values are checked cell by cell below (3000
# cells) and at the hard cells named; files check the layout around them — blanks, short rows,
# blank lines, junk, line endings, the cut into parts — each drawn hundreds of times in 1000.
@settings(max_examples=1000, deadline=None)
@given(csv_files())
def test_fast_reader_agrees_with_the_python_reader(raw):
    fast, slow = both(raw)
    if fast is None:  # it handed the file to Python, which is always allowed
        return
    if isinstance(slow, str):
        assert fast == slow
        return
    assert not isinstance(fast, str), fast
    assert same_bits(fast.X, slow.X) and same_bits(fast.y, slow.y)
    assert fast.feature_names == slow.feature_names
    assert fast.all_decimal_cells() == slow.all_decimal_cells()


@settings(max_examples=3000, deadline=None)
@given(st.one_of(floats, number.filter(lambda c: any(ch.isdigit() for ch in c))))
def test_every_value_is_correctly_rounded_and_exactness_is_right(text):
    """One cell at a time, against Python's float() (correctly rounded) and Fraction."""
    raw = f"x,y\n1,{text}\n".encode()
    fast, slow = both(raw)
    if fast is None or isinstance(slow, str):
        assert fast is None or fast == slow
        return
    value = fast.y[0]
    assert math.copysign(1, value) == math.copysign(1, float(text)) and value == float(text)
    exact = data.decimal_value(text)
    written = fast.all_decimal_cells().get((0, "y"))
    assert written == (exact if exact != Fraction(value) else None)


@pytest.mark.parametrize(
    "text",
    [
        "9007199254740993",  # 2**53 + 1: halfway between two doubles, ties to even
        "9007199254740993.0",
        "0.1",
        "1e22",
        "1e23",  # beyond the exact powers of ten
        "123456789012345678e-27",
        "9223372036854775807",  # the largest 19-digit significand the C path takes
        "9999999999999999999",  # a 19-digit significand beyond int64: handed to Python
        "0.000000000000000000000000000001",
        "2.2250738585072011e-308",  # near the smallest normal: Python's part
        "4.9e-324",
        "1.7976931348623157e308",
        "-0",
        "-0.0e5",
        "00000000000000000000000000001.5",
        "1.50000000000000000000000000000",
    ],
)
def test_hard_and_edge_values(text):
    raw = f"x,y\n1,{text}\n".encode()
    fast, slow = both(raw)
    assert fast is not None and not isinstance(fast, str)
    assert same_bits(fast.y, slow.y)
    assert fast.all_decimal_cells() == slow.all_decimal_cells()


def test_the_fast_path_is_the_one_that_runs(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x,y\n0.1,0.2\n0.5,3\n")
    dataset = data.load_csv(path)
    assert dataset.decimals is not None and len(dataset.decimals) == 2  # 0.1 and 0.2
    assert dataset.all_decimal_cells() == {(0, "x"): Fraction(1, 10), (0, "y"): Fraction(1, 5)}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.decimals(-1000, 1000, places=6), st.decimals(-(10**6), 10**6, places=3)),
        min_size=1,
        max_size=60,
    )
)
def test_the_reference_and_rounding_report_are_the_same_from_either_reader(rows):
    """The decimals in arrays (C reader) give the same exact as-written reference and the same
    input-rounding report as a Fraction per cell (Python reader)."""
    from gradcmp.dtypes import FLOAT32, FLOAT64
    from gradcmp.models import get_model
    from gradcmp.params import Params
    from gradcmp.problem import Problem
    from gradcmp.reference.compute import compute_reference

    raw = ("x,y\n" + "".join(f"{x},{y}\n" for x, y in rows)).encode()
    fast, slow = both(raw)
    assert fast is not None and not isinstance(fast, str)
    model = get_model("linear")
    from gradcmp.reference import exact, rounding, values

    references = []
    for dataset, part_rows in ((fast, 1 << 14), (fast, 3), (slow, 1 << 14)):
        params = Params.from_arrays(model.initial_params(dataset)).with_overrides(["theta1=0.1"])
        problem = Problem(model, dataset, params)
        with (  # also in parts of 3 rows (3 decimal cells)
            patch.object(values, "CHUNK_ROWS", part_rows),
            patch.object(exact, "CHUNK_ROWS", part_rows),
            patch.object(rounding, "CHUNK_ROWS", part_rows),
        ):
            references.append(compute_reference(problem, [FLOAT32, FLOAT64]))
    a, parts, b = references
    assert a.as_written == parts.as_written == b.as_written
    assert a.rounding == parts.rounding == b.rounding
    assert a.by_dtype == parts.by_dtype == b.by_dtype


# --- Cells where the readers once parted ------------------------------------------------------
# Exponents of 7+ digits cut short in C, the exact-value limit judged on the written exponent,
# and Python's 4300-digit int() limit.


def outcome(reader, raw: bytes):
    """What a reader makes of the file: the values and exact cells, or the error's words."""
    try:
        dataset = reader(raw, "y", "f.csv")
    except InputError as exc:
        return str(exc)
    if dataset is None:
        return None
    return (
        dataset.X.tobytes(),
        dataset.y.tobytes(),
        sorted(dataset.all_decimal_cells().items()),
    )


def assert_fast_agrees(raw: bytes) -> None:
    fast = outcome(data._load_csv_fast, raw)
    if fast is None:  # handed over to the Python reader: always allowed
        return
    slow = outcome(data._load_csv_python, raw)
    assert fast == slow, (fast if isinstance(fast, str) else "a dataset", slow)


@pytest.mark.parametrize(
    "cell",
    [
        # 10**-100000 · 10**1000000 = 10**900000: overflows (the Python reader says so).
        b"0." + b"0" * 99_999 + b"1e1000000",
        # 10**100000 · 10**-1000000: far below float64's range (the Python reader says so).
        b"1" + b"0" * 100_000 + b"e-1000000",
    ],
    ids=["overflow", "underflow"],
)
def test_an_exponent_of_seven_digits_is_not_cut_to_100000(cell):
    """_fastcsv.c parse_number stops accumulating the exponent once it reaches 100000
    (``if (exponent < 100000) exponent = exponent * 10 + d``): an exponent of 7+ digits is
    read as 100000-and-something. On its own that only makes the cell 'hard', but where the
    digits' own shift cancels it (≈10**5 zeros before or after the significant digits) q
    lands in [-27, 27] and the C reader stores a plainly wrong value: both cells here are
    read as 1.0, where the true values are 1e900000 (the Python reader: 'overflows float64')
    and 1e-899982 (the Python reader: 'far below float64's range'). A wrong number silently
    accepted is the worst outcome a strict reader can have."""
    assert_fast_agrees(b"x,y\n1," + cell + b"\n")


def test_a_long_decimal_beyond_max_exact_exponent_is_judged_alike():
    """0.000…(10000 zeros)…1e10001 is exactly 1.0. The C reader reads it as 1.0; the Python
    reader (the specification) refuses it with 'is far below float64's range (it rounds to 0)',
    because decimal_value gives up on any written exponent above MAX_EXACT_EXPONENT without
    looking at where the significant digits are. The two readers disagree on a valid file
    (and the Python reader's message is false: float() of the cell is 1.0)."""
    assert_fast_agrees(b"x,y\n1,0." + b"0" * 10_000 + b"1e10001\n")


def test_the_python_reader_does_not_call_1_far_below_float64s_range():
    """The same cell through the pure-Python reader alone: its value is exactly 1 (float()
    agrees), so saying it 'is far below float64's range (it rounds to 0)' is wrong. Either
    read it (as the C reader does) or refuse it with a message that is true."""
    raw = b"x,y\n1,0." + b"0" * 10_000 + b"1e10001\n"
    try:
        dataset = data._load_csv_python(raw, "y", "f.csv")
    except InputError as exc:
        assert "far below" not in str(exc), str(exc)[-120:]
    else:
        assert dataset.y.tolist() == [1.0]


@pytest.mark.parametrize(
    "cell",
    ["0" * 4300 + "1.5", "1" + "0" * 5000 + "e-5000"],
    ids=["leading-zeros", "trailing-zeros"],
)
def test_a_number_with_more_than_4300_digits_reads_the_same_in_both_readers(cell):
    """The Python reader builds the exact value with Fraction(cell), which converts the
    digits with int(); Python (3.11+) refuses int() of more than 4300 digits, so the Python
    reader dies with ValueError ('Exceeds the limit (4300 digits) for integer string
    conversion') on these plain decimals (1.5 and 1.0), while the C reader reads them (it
    skips leading zeros, and drops trailing zeros past the 19th digit). The readers must give
    the same answer, and a ValueError is not an answer (the CLI reports it as an internal
    error)."""
    assert_fast_agrees(f"x,y\n1,{cell}\n".encode())


def test_a_hard_cell_of_4400_digits_is_read_or_refused_not_a_crash(tmp_path):
    """A cell the C reader hands to Python (more than 19 significant digits) goes through
    _parse_cell → decimal_value → Fraction(cell) → int() of 4400 digits → ValueError, out of
    load_csv itself: the user gets 'internal error: ValueError … this is a bug in gradcmp'
    instead of the data read (the value is an ordinary 0.111…) or one clear InputError."""
    path = tmp_path / "long.csv"
    path.write_text("x,y\n1,0." + "1" * 4400 + "\n")
    try:
        dataset = data.load_csv(path)
    except InputError:
        return
    assert dataset.y.tolist() == [float("0." + "1" * 4400)]
