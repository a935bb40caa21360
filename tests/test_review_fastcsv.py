"""Found by a review of the C reader's fast path: inputs on which it disagreed with the
pure-Python reader (the specification), or on which the shared cell rules crashed: exponents
of 7+ digits cut short in C, the exact-value limit judged on the written exponent, and
Python's 4300-digit int() limit. Regression tests."""

from __future__ import annotations

import pytest

from gradcmp import data
from gradcmp.errors import InputError

pytestmark = pytest.mark.skipif(data._fastcsv is None, reason="the C reader is not built")


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
