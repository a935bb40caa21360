"""Strict loading of datasets: every cell a finite decimal number, every problem a clear error.

The float64 arrays are the master copy every backend starts from. A decimal in the file that
float64 cannot hold exactly (``0.1``) is kept as an exact fraction too, so the reference can
say how much rounding the input itself introduced.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError, Option
from .reference.exact import ChunkedExactData, ExactSource

# Around a cell, ASCII spaces and tabs are ignored; other whitespace is an error.
BLANKS = " \t"
# Plain ASCII decimal syntax: optional sign, digits with an optional point, optional exponent.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
# Integers this short are exact in float64 (|v| < 10**15 < 2**53): no Fraction needed.
SHORT_INTEGER = re.compile(r"[+-]?[0-9]{1,15}\Z")

try:  # the C reader (setup.py builds it where a compiler is at hand)
    from . import _fastcsv
except ImportError:  # pragma: no cover - the pure-Python reader does the same, slower
    _fastcsv = None

BUNDLED = "xy.csv"
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


# The C reader stores a decimal's power of ten q as q + EXPONENT_BIAS (int8); 0: none there.
EXPONENT_BIAS = 64


@dataclass(frozen=True)
class Decimals:
    """Cells float64 cannot hold, as written, beside the values (the C reader's form, millions
    of them in a large file): column c's row r holds exactly
    ``significands[c, r] · 10**(exponents[c, r] − EXPONENT_BIAS)`` where ``exponents[c, r]``
    is not 0 (columns in the file's order)."""

    header: tuple[str, ...]
    significands: np.ndarray  # int64, columns × rows
    exponents: np.ndarray  # int8, biased; 0 where the float64 value is exact
    count: int

    def __len__(self) -> int:
        return self.count

    def for_column(
        self, name: str, start: int = 0, stop: int | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rows counted from ``start``, significands, exponents) of column ``name``'s
        decimals in rows [start, stop)."""
        c = self.header.index(name)
        exponents = self.exponents[c, start:stop]
        rows = np.flatnonzero(exponents)
        return (
            rows,
            self.significands[c, start:stop][rows],
            exponents[rows].astype(np.int16) - EXPONENT_BIAS,
        )

    def cells(self) -> dict[tuple[int, str], Fraction]:
        """The same as ``Dataset.decimal_cells`` (a Fraction per cell: for small data)."""
        return {
            (int(r), name): Fraction(int(s)) * Fraction(10) ** int(e)
            for name in self.header
            for r, s, e in zip(*self.for_column(name))
        }


@dataclass(frozen=True)
class Dataset:
    """A matrix of features ``X`` (n × d) and a target ``y`` (n), float64."""

    path: str
    feature_names: tuple[str, ...]
    target: str
    X: np.ndarray
    y: np.ndarray
    # Exact values of the cells float64 rounds, keyed by (row, column name) ...
    decimal_cells: dict[tuple[int, str], Fraction] = field(default_factory=dict)
    # ... and, from the C reader, most of them in arrays (None: none there).
    decimals: Decimals | None = None

    @property
    def written_in_float64(self) -> bool:
        """Whether every value is exactly as written (no decimal cell float64 rounds)."""
        return not self.decimal_cells and self.decimals is None

    def all_decimal_cells(self) -> dict[tuple[int, str], Fraction]:
        """Every cell float64 rounds, exactly (a Fraction per cell: for small data)."""
        cells = dict(self.decimal_cells)
        if self.decimals is not None:
            cells.update(self.decimals.cells())
        return cells

    @property
    def sha256(self) -> str:
        """Digest of the column names and float64 values (identifies the data in baselines)."""
        import hashlib

        digest = hashlib.sha256("\x00".join((*self.feature_names, self.target)).encode())
        digest.update(self.X.tobytes())
        digest.update(self.y.tobytes())
        return digest.hexdigest()

    @property
    def rows(self) -> int:
        return self.X.shape[0]

    @property
    def features(self) -> int:
        return self.X.shape[1]

    def exact_data(self) -> ChunkedExactData:
        """The values as written in the file, exactly, as integer columns made a part at a
        time (for the exact reference): the floats with the decimal cells put back."""
        by_column: dict[str, dict[int, Fraction]] = {}
        for (row, name), value in self.decimal_cells.items():
            by_column.setdefault(name, {})[row] = value

        def source(name: str, values: np.ndarray) -> ExactSource:
            return ExactSource(values, self.decimals, name, by_column.get(name, {}))

        columns = [source(name, self.X[:, j]) for j, name in enumerate(self.feature_names)]
        return ChunkedExactData(columns, source(self.target, self.y))

    def exact_columns(self) -> tuple[list[list[Fraction]], list[Fraction]]:
        """The values as written in the file, exactly: (feature columns, target)."""
        cells = self.all_decimal_cells()
        columns = [
            [cells.get((i, name), Fraction(v)) for i, v in enumerate(self.X[:, j])]
            for j, name in enumerate(self.feature_names)
        ]
        target = [cells.get((i, self.target), Fraction(v)) for i, v in enumerate(self.y)]
        return columns, target


def bundled_path() -> Path:
    """The seed's data shipped inside the package (``data/xy.csv`` in the repository)."""
    return Path(str(resources.files("gradcmp") / "data" / BUNDLED))


def load(path: str | Path | None, target: str = "y") -> Dataset:
    """Read a dataset file (CSV, or .npy/.npz/Parquet by suffix) or a directory of Parquet
    partitions; ``None`` means the bundled seed data."""
    if path is not None and not str(path).strip():
        raise InputError("the data path is empty", hint=("give a CSV file with ", Option("data")))
    if path is None:
        return load_csv(bundled_path(), target, shown_as=f"{BUNDLED} (bundled)")
    path = Path(path)
    from .arrays import LOADERS

    loader = LOADERS.get(path.suffix.lower())
    if loader is None and path.is_dir():  # Parquet partitions (partitions.py)
        from .partitions import load_directory

        return load_directory(path, target)
    if loader is None:
        return load_csv(path, target)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise InputError(what, where=str(path), hint=CHECK_DATA_PATH)
    return loader(path, target, str(path))


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
    rows = _read_rows(raw, data_start, line_no + 1, ncols)
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


@dataclass
class _Chunk:
    """One thread's part of the rows: text[start, stop), its first line numbered
    ``first_line`` once the parts before it are counted; room for ``room`` rows from row
    ``row0`` of the shared arrays."""

    start: int
    stop: int
    row0: int = 0
    room: int = 0
    first_line: int = 0
    rows: int = 0
    inexact: int = 0
    lines: int = 0  # lines read (with the blank ones); a problem ends the count there
    problem_line: int | None = None  # where the first problem is, if any
    full: bool = False
    hard: list = field(default_factory=list)  # (cell index, line, cell text)


@dataclass
class _Rows:
    """What the C reader read: values (columns × rows), the decimals of inexact cells."""

    chunks: list[_Chunk]
    values: np.ndarray
    significands: np.ndarray
    exponents: np.ndarray
    count: int
    inexact: int


def _read_rows(raw, data_start: int, first_line: int, ncols: int, exact_room: bool = False):
    """The rows, read by C calls on parts of the file in threads (the C reader releases the
    GIL), each part into its own stretch of three shared arrays, which are then closed up
    in place. Parts end at line ends; each counts its lines from 0, made file-wide after.
    Room for each part's rows is guessed from the first lines' length; where a guess is
    short, the file is read again with the room counted exactly."""
    from concurrent.futures import ThreadPoolExecutor

    size = len(raw) - data_start
    threads = max(1, min(_usable_cpus(), MAX_THREADS, size // PARALLEL_BYTES))
    bounds = [data_start]
    for k in range(1, threads):
        cut = raw.find(b"\n", data_start + size * k // threads)
        if cut >= bounds[-1]:
            bounds.append(cut + 1)
    bounds.append(len(raw))
    chunks = [_Chunk(a, b) for a, b in zip(bounds, bounds[1:]) if b > a or a == data_start]
    if exact_room:
        text = np.frombuffer(raw, dtype=np.uint8)
        rooms = [int(np.count_nonzero(text[c.start : c.stop] == 10)) + 1 for c in chunks]
    else:
        sample = raw[data_start : data_start + 65536]
        bytes_per_line = max(1, len(sample) // max(1, sample.count(b"\n")))
        rooms = [_first_guess(c.stop - c.start, bytes_per_line) for c in chunks]
    row0 = 0
    for chunk, room in zip(chunks, rooms):
        chunk.row0, chunk.room, row0 = row0, room, row0 + room
    values = _fresh((ncols, row0), np.float64)
    significands = _fresh((ncols, row0), np.int64)
    exponents = _fresh((ncols, row0), np.int8)  # 0: no decimal kept in this cell

    def read(chunk: _Chunk) -> None:
        status, chunk.rows, chunk.inexact, _, chunk.lines, chunk.hard = _fastcsv.parse(
            raw,
            chunk.start,
            chunk.stop,
            0,
            ncols,
            values,
            significands,
            exponents,
            chunk.row0,
            chunk.row0 + chunk.room,
        )
        chunk.full = status == 2
        chunk.problem_line = chunk.lines if status == 1 else None

    if len(chunks) == 1:
        read(chunks[0])
    else:
        with ThreadPoolExecutor(len(chunks)) as pool:
            list(pool.map(read, chunks))
    if any(c.full for c in chunks):
        if exact_room:  # cannot happen: a line is at most one row
            raise RuntimeError("the C reader ran out of room counted exactly")
        return _read_rows(raw, data_start, first_line, ncols, exact_room=True)
    line = first_line
    for chunk in chunks:
        chunk.first_line = line
        chunk.hard = [(i, n + line, text) for i, n, text in chunk.hard]
        if chunk.problem_line is not None:
            chunk.problem_line += line
        line += chunk.lines
    count, inexact = sum(c.rows for c in chunks), sum(c.inexact for c in chunks)
    _close_up(chunks, (values, significands, exponents) if inexact else (values,))
    return _Rows(
        chunks,
        values[:, :count],
        significands[:, :count],
        exponents[:, :count],
        count,
        inexact,
    )


def _fresh(shape: tuple[int, int], dtype) -> np.ndarray:
    """A zeroed array in fresh anonymous memory (its pages are made as they are written).

    Not numpy's allocator: numpy asks the kernel for transparent huge pages on large arrays,
    and where the kernel defragments memory to make them (``defrag=madvise``, the common
    setting) a freshly started process waited ≈0.3 s of a 0.45 s read of 390 MB for them.
    """
    import mmap

    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if size == 0 or not hasattr(mmap, "MAP_ANONYMOUS"):  # (Windows: numpy's own)
        return np.zeros(shape, dtype=dtype)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _close_up(chunks: list[_Chunk], arrays) -> None:
    """Move each part's rows down to follow the previous part's, column by column, in place
    (memmove: the stretches may overlap)."""
    import ctypes

    for array in arrays:
        itemsize, stride = array.itemsize, array.strides[0]
        to = 0
        for chunk in chunks:
            if chunk.row0 != to and chunk.rows:
                for c in range(array.shape[0]):
                    base = array.ctypes.data + c * stride
                    ctypes.memmove(
                        base + to * itemsize, base + chunk.row0 * itemsize, chunk.rows * itemsize
                    )
            to += chunk.rows


# Below this many bytes per thread a file is read by fewer threads (they cost more than they
# save); above MAX_THREADS the memory bandwidth is the limit.
PARALLEL_BYTES = 8 * 2**20
MAX_THREADS = 8


def _first_guess(part_bytes: int, bytes_per_line: int) -> int:
    """Room for a part's rows: its bytes over the first lines' length, and a quarter more."""
    return part_bytes // bytes_per_line * 5 // 4 + 1024


def _usable_cpus() -> int:
    import os

    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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


def check_names(names: list[str], where: str, error=InputError) -> None:
    """Column names: none empty, none twice."""
    seen: set[str] = set()
    for i, cell in enumerate(names):
        if not cell:
            raise error(f"column {i + 1} has no name", where=where, hint="name every column")
        if cell in seen:
            raise error(f"column name {cell!r} appears twice", where=where, hint="rename one")
        seen.add(cell)


def from_arrays(X, y, path: str = "<arrays>") -> Dataset:
    """A Dataset from array-likes: ``X`` of shape (n, d) or (n,), ``y`` of shape (n,)."""
    from .arrays import from_columns
    from .errors import UsageError

    X_given, y_given = np.asarray(X), np.asarray(y)
    if X_given.ndim == 1:
        X_given = X_given[:, None]
    if X_given.ndim != 2 or y_given.ndim != 1 or X_given.shape[0] != y_given.shape[0]:
        raise UsageError(
            f"X has shape {X_given.shape} and y has shape {y_given.shape}",
            hint="give X as (n, d) or (n,) and y as (n,), n ≥ 1",
            option="data",
        )
    d = X_given.shape[1]
    names = [f"x{j}" for j in range(d)] if d > 1 else ["x"]
    columns = {name: X_given[:, j] for j, name in enumerate(names)}
    columns["y"] = y_given
    return from_columns(path, columns, "y", error=UsageError)
