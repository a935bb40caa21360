"""Loading datasets: CSV (csvfile.py), .npy/.npz/Parquet (arrays.py), a directory of Parquet
partitions (partitions.py), or the Python API's arrays; each held to the same strict rules.

The float64 values are the master copy every backend starts from (a memory-mapped file's pages
are read where they are, a part at a time); a decimal in the file that float64 cannot hold
exactly (``0.1``) is kept as an exact fraction too, so the reference can say how much rounding
the input itself introduced.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import InputError, Option, UsageError
from .arrays import LOADERS, from_columns
from .csvfile import (  # noqa: F401 - the readers' names, as they were here
    BLANKS,
    CHECK_DATA_PATH,
    NUMBER,
    SHORT_INTEGER,
    _load_csv_fast,
    _load_csv_python,
    decimal_value,
    load_csv,
)
from .csvrows import _fastcsv  # noqa: F401
from .dataset import EXPONENT_BIAS, Dataset, Decimals, check_names  # noqa: F401

BUNDLED = "xy.csv"


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


def from_arrays(X, y, path: str = "<arrays>") -> Dataset:
    """A Dataset from array-likes: ``X`` of shape (n, d) or (n,), ``y`` of shape (n,)."""
    X_given, y_given = np.asarray(X), np.asarray(y)
    if X_given.ndim == 1:
        X_given = X_given[:, None]
    if (
        X_given.ndim != 2
        or y_given.ndim != 1
        or X_given.shape[0] != y_given.shape[0]
        or X_given.shape[1] == 0
    ):
        raise UsageError(
            f"X has shape {X_given.shape} and y has shape {y_given.shape}",
            hint="give X as (n, d) or (n,) and y as (n,), n ≥ 1, d ≥ 1",
            option="data",
        )
    d = X_given.shape[1]
    names = [f"x{j}" for j in range(d)] if d > 1 else ["x"]
    columns = {name: X_given[:, j] for j, name in enumerate(names)}
    columns["y"] = y_given
    return from_columns(path, columns, "y", error=UsageError)
