"""Datasets from arrays: the Python API's (X, y), and ``.npy``, ``.npz`` and Parquet files,
held to the same rules as CSV (numeric, finite, named, rectangular) with one clear error each.

Column conventions:

- ``.npy``: one 2-D numeric array; its columns are x0, x1, … and the last one is the target y.
- ``.npz``: either arrays ``X`` (2-D) and ``y`` (1-D), or one 1-D array per column, named.
- Parquet (needs pyarrow: ``pip install 'gradcmp[parquet]'``): numeric columns, no nulls.
"""

from __future__ import annotations

import zipfile
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import InputError, Option
from .dataset import Dataset, check_names

NUMERIC_KINDS = "iuf"


def from_columns(
    path: str, columns: dict[str, np.ndarray], target: str, error=InputError, copy: bool = True
) -> Dataset:
    """Check named 1-D columns and build a Dataset; integers beyond 2**53 and long doubles
    keep their exact values (for the reference and the input-rounding report).

    ``copy=False`` keeps float64 columns as they are (a memory-mapped file's pages, shared,
    not copied); the caller's arrays are copied, so nothing done here can touch them."""
    names = list(columns)
    check_names(names, path, error)
    if target not in columns:
        raise error(
            f"no column named {target!r} (columns: {', '.join(names)})",
            where=path,
            hint=("name the target column with ", Option("target")),
        )
    if len(columns) < 2:
        raise error("there is no feature column besides the target", where=path)
    lengths = {name: np.shape(c) for name, c in columns.items()}
    rows = {shape[0] if len(shape) == 1 else None for shape in lengths.values()}
    if None in rows or len(rows) != 1:
        shown = ", ".join(f"{n} {list(s)}" for n, s in lengths.items())
        raise error(f"columns are not 1-D of one length ({shown})", where=path)
    if rows == {0}:
        raise error("there are no rows", where=path)
    converted, decimal_cells = {}, {}
    for name, column in columns.items():
        given = np.asarray(column)
        if given.dtype.kind not in NUMERIC_KINDS:
            raise error(
                f"column {name!r} is {given.dtype}, not numbers",
                where=path,
                hint="give integer or floating-point columns",
            )
        with np.errstate(over="ignore"):
            as_float = given.astype(np.float64, copy=copy)
        bad = np.flatnonzero(~np.isfinite(as_float))
        if bad.size:
            value = given[bad[0]]
            what = "not finite" if not np.isfinite(value) else "beyond float64's range"
            raise error(
                f"column {name!r} row {bad[0] + 1} is {value.item()!r}: {what}",
                where=path,
                hint="data must be finite numbers",
            )
        if given.dtype.kind in "iu" or given.dtype == np.longdouble:
            with np.errstate(invalid="ignore"):  # compared in the given dtype, exactly
                differs = np.flatnonzero(as_float.astype(given.dtype) != given)
            for i in differs:
                value = given[i]
                exact = (
                    Fraction(int(value))
                    if given.dtype.kind in "iu"
                    else Fraction(*value.as_integer_ratio())
                )
                decimal_cells[(int(i), name)] = exact
        converted[name] = as_float
    features = [n for n in names if n != target]
    # Without a copy, the columns stay where they are (a memory-mapped file's pages: strided
    # for a row-major .npy); frameworks take strided arrays as they are.
    contiguous = np.ascontiguousarray if copy else np.asarray
    if len(features) == 1:  # (n, 1): a view of the column
        X = contiguous(converted[features[0]])[:, None]
    else:
        X = np.ascontiguousarray(np.column_stack([converted[n] for n in features]))
    return Dataset(path, tuple(features), target, X, contiguous(converted[target]), decimal_cells)


def load_npy(path: Path, target: str, shown: str) -> Dataset:
    """Memory-mapped: the file's pages are read where they are needed and never copied when
    the array is float64 and column-major (``np.save(path, np.asfortranarray(a))``); a
    row-major array's columns are copied out once, contiguous."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy file ({exc})", where=shown) from None
    if array.ndim != 2 or array.shape[1] < 2:
        raise InputError(
            f"a .npy dataset is a 2-D array with at least 2 columns, this is {list(array.shape)}",
            where=shown,
            hint="columns x0, x1, … and the target y last",
        )
    if target != "y":
        raise InputError(
            f"a .npy file has no column names: its last column is the target y, not {target!r}",
            where=shown,
        )
    names = [f"x{j}" for j in range(array.shape[1] - 1)] + ["y"]
    return from_columns(shown, {n: array[:, j] for j, n in enumerate(names)}, "y", copy=False)


def load_npz(path: Path, target: str, shown: str) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"not a readable .npz file ({exc})", where=shown) from None
    if set(arrays) == {"X", "y"}:
        X, y = arrays["X"], arrays["y"]
        if X.ndim != 2:
            raise InputError(f"X is {X.ndim}-D, not 2-D", where=shown)
        columns = {f"x{j}": X[:, j] for j in range(X.shape[1])}
        columns["y"] = y
        return from_columns(shown, columns, target)
    return from_columns(shown, arrays, target)


def load_parquet(path: Path, target: str, shown: str) -> Dataset:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "reading Parquet needs pyarrow", where=shown, hint="pip install 'gradcmp[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError …
        raise InputError(f"not a readable Parquet file ({exc})", where=shown) from None
    columns = {}
    for name in table.column_names:
        column = table.column(name)
        if column.null_count:
            nulls = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
            raise InputError(
                f"column {name!r} has {column.null_count} null(s), first at row {nulls[0] + 1}",
                where=shown,
                hint="fill or drop missing values first",
            )
        try:
            columns[name] = column.to_numpy()
        except Exception as exc:
            raise InputError(
                f"column {name!r} cannot be read as numbers ({exc})", where=shown
            ) from None
    return from_columns(shown, columns, target)


LOADERS = {".npy": load_npy, ".npz": load_npz, ".parquet": load_parquet, ".pq": load_parquet}
