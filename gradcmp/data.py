"""Strict loading of datasets: every cell a finite decimal number, every problem a clear error.

The float64 arrays are the master copy every backend starts from. A decimal in the file that
float64 cannot hold exactly (``0.1``) is kept as an exact fraction too, so the reference can
say how much rounding the input itself introduced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import InputError
from .exact import ExactColumn, ExactData

# Around a cell, ASCII spaces and tabs are ignored; other whitespace is an error.
BLANKS = " \t"
# Plain ASCII decimal syntax: optional sign, digits with an optional point, optional exponent.
NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
# Integers this short are exact in float64 (|v| < 10**15 < 2**53): no Fraction needed.
SHORT_INTEGER = re.compile(r"[+-]?[0-9]{1,15}\Z")

BUNDLED = "xy.csv"

# Decimal exponents beyond this are not turned into exact fractions (10**999999999 would take
# forever): past float64's range such a number is 0 or inf anyway.
MAX_EXACT_EXPONENT = 10_000


def decimal_value(cell: str) -> Fraction | None:
    """The exact value of a decimal string that NUMBER accepted; None when its exponent is so
    large that the exact value is not worth building (the caller decides from the float)."""
    mantissa, _, exponent = cell.lower().partition("e")
    if exponent and abs(int(exponent)) > MAX_EXACT_EXPONENT:
        return Fraction(0) if not mantissa.strip("+-.0") else None
    return Fraction(cell)


@dataclass(frozen=True)
class Dataset:
    """A matrix of features ``X`` (n × d) and a target ``y`` (n), float64."""

    path: str
    feature_names: tuple[str, ...]
    target: str
    X: np.ndarray
    y: np.ndarray
    # Exact values of the cells float64 rounds, keyed by (row, column name).
    decimal_cells: dict[tuple[int, str], Fraction] = field(default_factory=dict)

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

    def exact_data(self) -> ExactData:
        """The values as written in the file, exactly, as integer columns (for the exact
        reference): the floats' exact values with the decimal cells put back."""
        by_column: dict[str, dict[int, Fraction]] = {}
        for (row, name), value in self.decimal_cells.items():
            by_column.setdefault(name, {})[row] = value
        columns = tuple(
            ExactColumn.from_floats(self.X[:, j]).with_cells(by_column.get(name, {}))
            for j, name in enumerate(self.feature_names)
        )
        target = ExactColumn.from_floats(self.y).with_cells(by_column.get(self.target, {}))
        return ExactData(columns, target)

    def exact_columns(self) -> tuple[list[list[Fraction]], list[Fraction]]:
        """The values as written in the file, exactly: (feature columns, target)."""
        columns = [
            [self.decimal_cells.get((i, name), Fraction(v)) for i, v in enumerate(self.X[:, j])]
            for j, name in enumerate(self.feature_names)
        ]
        target = [
            self.decimal_cells.get((i, self.target), Fraction(v)) for i, v in enumerate(self.y)
        ]
        return columns, target


def bundled_path() -> Path:
    """The seed's data shipped inside the package (``data/xy.csv`` in the repository)."""
    return Path(str(resources.files("gradcmp") / "data" / BUNDLED))


def load(path: str | Path | None, target: str = "y") -> Dataset:
    """Read a dataset file (CSV, or .npy/.npz/Parquet by suffix); ``None`` means the bundled
    seed data."""
    if path is not None and not str(path).strip():
        raise InputError("the data path is empty", hint="give a CSV file with --data")
    if path is None:
        return load_csv(bundled_path(), target, shown_as=f"{BUNDLED} (bundled)")
    path = Path(path)
    from .arrays import LOADERS

    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        return load_csv(path, target)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "no such file"
        raise InputError(what, where=str(path), hint="check the --data path")
    return loader(path, target, str(path))


def load_csv(path: Path, target: str = "y", shown_as: str | None = None) -> Dataset:
    """Read a CSV file with a header row; every other row is numbers.

    Accepted: UTF-8 with or without BOM, LF or CRLF line ends, spaces around cells, blank lines
    (skipped). Everything else that is not a finite decimal number is an error naming the line.
    """
    name = shown_as or str(path)
    text = _read_text(path, name)
    # Lines end at LF (a CR before it is part of CRLF); nothing else splits a line, so the
    # line numbers are those of any editor.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip(BLANKS)]
    for line_no, line in numbered:
        if "\r" in line:
            raise InputError(
                "a carriage return inside a line (old Mac line ends?)",
                where=f"{name}:{line_no}",
                hint="save the file with LF or CRLF line ends",
            )
    if not numbered:
        raise InputError("the file is empty", where=name, hint="give a CSV file with a header row")
    header_line, header_text = numbered[0]
    header = [cell.strip(BLANKS) for cell in header_text.split(",")]
    _check_header(header, f"{name}:{header_line}")
    if target not in header:
        raise InputError(
            f"no column named {target!r} (columns: {', '.join(header)})",
            where=f"{name}:{header_line}",
            hint="name the target column with --target",
        )
    if len(header) < 2:
        raise InputError(
            "there is no feature column besides the target",
            where=f"{name}:{header_line}",
            hint="add at least one feature column",
        )
    rows = numbered[1:]
    if not rows:
        raise InputError("the file has a header but no data rows", where=f"{name}:{header_line}")

    values = np.empty((len(rows), len(header)), dtype=np.float64)
    decimal_cells: dict[tuple[int, str], Fraction] = {}
    for r, (line_no, line) in enumerate(rows):
        if line.lstrip(BLANKS).startswith("#"):
            raise InputError(
                "a '#' comment line",
                where=f"{name}:{line_no}",
                hint="comment lines are not allowed: remove them",
            )
        cells = line.split(",")
        if len(cells) != len(header):
            raise InputError(
                f"{len(cells)} field{'s' if len(cells) != 1 else ''} where the header has "
                f"{len(header)}",
                where=f"{name}:{line_no}",
                hint="every row needs one value per column, separated by commas",
            )
        for c, raw in enumerate(cells):
            cell = raw.strip(BLANKS)
            where = f"{name}:{line_no}"
            if not NUMBER.match(cell):
                what = "an empty cell" if not cell else f"{cell!r} is not a decimal number"
                hint = "write plain decimals such as 12, -0.5 or 1.5e-3"
                if cell and cell[0] in "\"'":
                    hint = "quoted values are text here: write the number without quotes"
                raise InputError(f"column {header[c]!r}: {what}", where=where, hint=hint)
            value = float(cell)
            if value in (float("inf"), float("-inf")):
                raise InputError(
                    f"column {header[c]!r}: {cell} overflows float64",
                    where=where,
                    hint="rescale the data",
                )
            values[r, c] = value
            if not SHORT_INTEGER.match(cell):
                exact = decimal_value(cell)
                if exact is None:
                    raise InputError(
                        f"column {header[c]!r}: {cell} is far below float64's range (it rounds "
                        "to 0)",
                        where=where,
                        hint="rescale the data",
                    )
                if exact != value:
                    decimal_cells[(r, header[c])] = exact

    features = [c for c, h in enumerate(header) if h != target]
    return Dataset(
        path=name,
        feature_names=tuple(header[c] for c in features),
        target=target,
        X=np.ascontiguousarray(values[:, features]),
        y=np.ascontiguousarray(values[:, header.index(target)]),
        decimal_cells=decimal_cells,
    )


def _read_text(path: Path, name: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", where=name, hint="check the --data path") from None
    except IsADirectoryError:
        raise InputError("is a directory", where=name, hint="give a CSV file") from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where=name) from None
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
        )
    d = X_given.shape[1]
    names = [f"x{j}" for j in range(d)] if d > 1 else ["x"]
    columns = {name: X_given[:, j] for j, name in enumerate(names)}
    columns["y"] = y_given
    return from_columns(path, columns, "y", error=UsageError)
