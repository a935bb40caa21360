"""Strict reading of CSV files: every cell a finite decimal number, every problem a clear error
naming its line. A decimal float64 cannot hold exactly (``0.1``) is kept exactly too, so the
reference can say how much rounding the input itself introduced.

The C reader (csvrows.py, ``_fastcsv``) reads the rows; the rules and every message live here,
in Python: where the C reader stops, the problem is found and worded by the same code the
pure-Python reader runs, so both give the same answer.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, Option
from .csvrows import _fastcsv, read_rows
from .dataset import Dataset, Decimals, check_names

# Around a cell, ASCII spaces and tabs are ignored; other whitespace is an error.
BLANKS = " \t"
# Plain ASCII decimal syntax: optional sign, digits with an optional point, optional exponent.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
# Integers this short are exact in float64 (|v| < 10**15 < 2**53): no Fraction needed.
SHORT_INTEGER = re.compile(r"[+-]?[0-9]{1,15}\Z")

# The hint of a data path that is not there (--data on the command line, data= in Python).
CHECK_DATA_PATH = ("check the ", Option("data"), " path")

# Decimal magnitudes beyond 10**±this are not turned into exact fractions (10**999999999
# would take forever): past float64's range such a number is 0 or inf anyway.
MAX_EXACT_EXPONENT = 10_000
# Digits per int() call: Python 3.11 refuses longer strings (its default limit is 4300).
INT_DIGITS = 4000


def decimal_value(cell: str) -> Fraction | None:
    """The exact value of a decimal string that NUMBER accepted; None when its magnitude is
    beyond 10**±MAX_EXACT_EXPONENT, where the exact value is not worth building (the float is
    0 or inf there; the caller decides from it).

    The magnitude is where the significant digits fall, not the written exponent
    (``0.000…1e10001`` can be 1), and the digits are read in parts: Python refuses ``int()``
    of more than 4300 digits at once."""
    mantissa, _, written_exponent = cell.lower().partition("e")
    negative = mantissa.startswith("-")
    whole, _, fraction = mantissa.lstrip("+-").partition(".")
    digits = (whole + fraction).lstrip("0")
    if not digits:
        return Fraction(0)
    stripped = digits.rstrip("0")
    exponent = int(written_exponent or "0") - len(fraction) + len(digits) - len(stripped)
    if abs(exponent + len(stripped)) > MAX_EXACT_EXPONENT:  # 10**(top − 1) ≤ |value| < 10**top
        return None
    significand = 0
    for start in range(0, len(stripped), INT_DIGITS):
        part = stripped[start : start + INT_DIGITS]
        significand = significand * 10 ** len(part) + int(part)
    if negative:
        significand = -significand
    if exponent >= 0:
        return Fraction(significand * 10**exponent)
    return Fraction(significand, 10**-exponent)


def load_csv(path: Path, target: str = "y", shown_as: str | None = None) -> Dataset:
    """Read a CSV file with a header row; every other row is numbers.

    Accepted: UTF-8 with or without BOM, LF or CRLF line ends, spaces around cells, blank lines
    (skipped). Everything else that is not a finite decimal number is an error naming the line.

    The C reader (``_fastcsv``, where it was compiled) reads the rows; the rules and every
    message live here, in Python: where the C reader stops, the problem is found and worded
    by the same code the pure-Python reader runs, so both give the same answer.
    """
    name = shown_as or str(path)
    if _fastcsv is not None:
        with _mapped(path, name) as raw:
            dataset = _load_csv_fast(raw, target, name)
        if dataset is not None:
            return dataset
    return _load_csv_python(_read_bytes(path, name), target, name)


def _load_csv_python(raw: bytes, target: str, name: str) -> Dataset:
    text = _decode(raw, name)
    # Lines end at LF (a CR before it is part of CRLF); nothing else splits a line, so the
    # line numbers are those of any editor.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip(BLANKS)]
    for line_no, line in numbered:
        if "\r" in line:
            raise _carriage_return(name, line_no)
    if not numbered:
        raise InputError("the file is empty", where=name, hint="give a CSV file with a header row")
    header_line, header_text = numbered[0]
    header = _header(header_text, target, f"{name}:{header_line}")
    rows = numbered[1:]
    if not rows:
        raise InputError("the file has a header but no data rows", where=f"{name}:{header_line}")

    values = np.empty((len(rows), len(header)), dtype=np.float64)
    decimal_cells: dict[tuple[int, str], Fraction] = {}
    for r, (line_no, line) in enumerate(rows):
        for c, (value, exact) in enumerate(_parse_row(line, header, f"{name}:{line_no}")):
            values[r, c] = value
            if exact is not None:
                decimal_cells[(r, header[c])] = exact
    return _dataset(name, header, target, [values[:, c] for c in range(len(header))], decimal_cells)


def _carriage_return(name: str, line_no: int) -> InputError:
    return InputError(
        "a carriage return inside a line (old Mac line ends?)",
        where=f"{name}:{line_no}",
        hint="save the file with LF or CRLF line ends",
    )


def _header(text: str, target: str, where: str) -> list[str]:
    header = [cell.strip(BLANKS) for cell in text.split(",")]
    _check_header(header, where)
    if target not in header:
        raise InputError(
            f"no column named {target!r} (columns: {', '.join(header)})",
            where=where,
            hint=("name the target column with ", Option("target")),
        )
    if len(header) < 2:
        raise InputError(
            "there is no feature column besides the target",
            where=where,
            hint="add at least one feature column",
        )
    return header


def _parse_row(line: str, header: list[str], where: str) -> list[tuple[float, Fraction | None]]:
    """One data row: (float64 value, exact value where float64 rounds it, else None) per cell,
    or the error that names what is wrong with it."""
    if line.lstrip(BLANKS).startswith("#"):
        raise InputError(
            "a '#' comment line", where=where, hint="comment lines are not allowed: remove them"
        )
    cells = line.split(",")
    if len(cells) != len(header):
        raise InputError(
            f"{len(cells)} field{'s' if len(cells) != 1 else ''} where the header has "
            f"{len(header)}",
            where=where,
            hint="every row needs one value per column, separated by commas",
        )
    return [_parse_cell(raw.strip(BLANKS), header[c], where) for c, raw in enumerate(cells)]


def _parse_cell(cell: str, column: str, where: str) -> tuple[float, Fraction | None]:
    if not NUMBER.match(cell):
        what = "an empty cell" if not cell else f"{cell!r} is not a decimal number"
        hint = "write plain decimals such as 12, -0.5 or 1.5e-3"
        if cell and cell[0] in "\"'":
            hint = "quoted values are text here: write the number without quotes"
        raise InputError(f"column {column!r}: {what}", where=where, hint=hint)
    value = float(cell)
    if value in (float("inf"), float("-inf")):
        raise InputError(
            f"column {column!r}: {cell} overflows float64", where=where, hint="rescale the data"
        )
    if SHORT_INTEGER.match(cell):
        return value, None
    exact = decimal_value(cell)
    if exact is None:
        raise InputError(
            f"column {column!r}: {cell} is far below float64's range (it rounds to 0)",
            where=where,
            hint="rescale the data",
        )
    return value, (exact if exact != value else None)


def _dataset(name, header, target, columns, decimal_cells, decimals=None) -> Dataset:
    features = [c for c, h in enumerate(header) if h != target]
    if len(features) == 1:  # a view: (n, 1) is contiguous
        X = np.ascontiguousarray(columns[features[0]][:, None])
    else:
        X = np.column_stack([columns[c] for c in features])
    return Dataset(
        path=name,
        feature_names=tuple(header[c] for c in features),
        target=target,
        X=X,
        y=np.ascontiguousarray(columns[header.index(target)]),
        decimal_cells=decimal_cells,
        decimals=decimals,
    )


def _load_csv_fast(raw: bytes, target: str, name: str) -> Dataset | None:
    """The rows read by the C reader; None where the file needs the Python reader's eye
    (bytes beyond ASCII, NUL, a stray carriage return: rules that span the whole file)."""
    start = 3 if raw[:3] == b"\xef\xbb\xbf" else 0
    line_no = 1
    while True:  # the header: the first line that is not blank
        newline = raw.find(b"\n", start)
        end = len(raw) if newline < 0 else newline
        header_bytes = raw[start:end].removesuffix(b"\r")
        if header_bytes.strip(b" \t") or newline < 0:
            break
        start, line_no = newline + 1, line_no + 1
    try:
        header_text = header_bytes.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\x00" in header_text or "\r" in header_text or not header_text.strip(BLANKS):
        return None
    try:
        header = _header(header_text, target, f"{name}:{line_no}")
    except InputError:
        if _needs_python(raw):
            return None
        raise
    data_start = len(raw) if newline < 0 else newline + 1
    ncols = len(header)
    rows = read_rows(raw, data_start, line_no + 1, ncols)
    decimal_cells: dict[tuple[int, str], Fraction] = {}
    rows_before = 0
    try:
        for chunk in rows.chunks:
            for cell_index, cell_line, text in chunk.hard:  # in line order
                if cell_line == chunk.problem_line:
                    break  # that line is checked whole, below
                row, column = divmod(cell_index, ncols)
                where = f"{name}:{cell_line}"
                value, exact = _parse_cell(text.decode("ascii"), header[column], where)
                rows.values[column, rows_before + row] = value
                if exact is not None:
                    decimal_cells[(rows_before + row, header[column])] = exact
            if chunk.problem_line is not None:
                if _needs_python(raw):
                    return None
                line = _line(raw, chunk.start, chunk.first_line, chunk.problem_line)
                text = line.decode("ascii").removesuffix("\r")
                _parse_row(text, header, f"{name}:{chunk.problem_line}")
                return None  # the C reader saw a problem the rules do not: let Python decide
            rows_before += chunk.rows
    except InputError:
        if _needs_python(raw):
            return None
        raise
    if rows.count == 0:
        raise InputError("the file has a header but no data rows", where=f"{name}:{line_no}")
    decimals = None
    if rows.inexact:
        decimals = Decimals(tuple(header), rows.significands, rows.exponents, rows.inexact)
    columns = [rows.values[c] for c in range(ncols)]
    if ncols > 2:  # X is a copy then: y alone must not keep every column's buffer alive
        t = header.index(target)
        columns[t] = columns[t].copy()
    return _dataset(name, header, target, columns, decimal_cells, decimals)


def _needs_python(raw) -> bool:
    """Whether a problem in this file may be one the Python reader words from the whole file
    (invalid UTF-8, a NUL byte, a carriage return that does not end a line)."""
    raw = bytes(raw)  # (from a memory map: only on the way to an error)
    return b"\x00" in raw or not raw.isascii() or raw.count(b"\r") != raw.count(b"\r\n")


def _line(raw: bytes, start: int, first_line: int, wanted: int) -> bytes:
    """The text of line ``wanted``, counting ``first_line`` from offset ``start``."""
    for _ in range(wanted - first_line):
        start = raw.find(b"\n", start) + 1
    newline = raw.find(b"\n", start)
    return raw[start : None if newline < 0 else newline]


def _read_bytes(path: Path, name: str) -> bytes:
    with _opened(path, name) as f:
        return f.read()


@contextmanager
def _opened(path: Path, name: str):
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise InputError("no such file", where=name, hint=CHECK_DATA_PATH) from None
    except IsADirectoryError:
        raise InputError("is a directory", where=name, hint="give a CSV file") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=name) from None
    with f:
        try:
            yield f
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", where=name) from None


@contextmanager
def _mapped(path: Path, name: str):
    """The file's bytes, memory-mapped (read-only, no copy; the C reader's threads read the
    page cache directly), or read where it cannot be mapped (empty, a pipe)."""
    import mmap

    with _opened(path, name) as f:
        try:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            yield f.read()
            return
        try:
            yield mapped
        finally:
            mapped.close()


def _decode(raw: bytes, name: str) -> str:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not valid UTF-8 (byte {exc.start})", where=f"{name}:{line}", hint="save it as UTF-8"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputError(
            "NUL byte in a text file", where=f"{name}:{line}", hint="save it as UTF-8 text"
        )
    return text


def _check_header(header: list[str], where: str) -> None:
    if all(NUMBER.match(cell) for cell in header):
        raise InputError(
            "the first row is numbers, not column names",
            where=where,
            hint="add a header row such as x,y",
        )
    check_names(header, where)
