"""A dataset split into Parquet files: ``--data DIR`` reads every ``*.parquet`` in ``DIR`` (in
name order, as Spark, Dask and pyarrow write ``part-00000.parquet``, ``part-00001.parquet``, …).

One process reads them all (``load_directory``); under ``python -m gradcmp.dist`` each rank
reads its own contiguous run of partitions (``for_rank``) and no process holds every row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError


def partition_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".parquet", ".pq"))
    if not files:
        raise InputError(
            "is a directory with no .parquet files",
            where=str(directory),
            hint="give a data file, or a directory of Parquet partitions",
        )
    return files


def for_rank(files: list[Path], rank: int, world_size: int) -> list[Path]:
    """Rank r's partitions: a contiguous run, the first ``P mod N`` ranks one longer (rows
    stay in file order across ranks, as ``Shards.split`` keeps them in one file)."""
    base, extra = divmod(len(files), world_size)
    start = rank * base + min(rank, extra)
    return files[start : start + base + (1 if rank < extra else 0)]


def load_files(files: list[Path], target: str, shown_as: str):
    """The partitions' rows as one Dataset (the same columns in every file, else an error
    naming the file that differs)."""
    from .arrays import LOADERS
    from .dataset import Dataset

    parts = [LOADERS[".parquet"](path, target, str(path)) for path in files]
    if not parts:
        return None
    first = parts[0]
    for path, part in zip(files, parts):
        if part.feature_names != first.feature_names:
            raise InputError(
                f"has columns {', '.join(part.feature_names)}, not "
                f"{', '.join(first.feature_names)} as in {files[0].name}",
                where=str(path),
                hint="every partition needs the same columns",
            )
    return Dataset(
        path=shown_as,
        feature_names=first.feature_names,
        target=first.target,
        X=np.concatenate([p.X for p in parts]),
        y=np.concatenate([p.y for p in parts]),
    )


def load_directory(directory: Path, target: str):
    return load_files(partition_files(directory), target, str(directory))


def rows_of(dataset, start: int, stop: int):
    """Rows [start, stop) of a Dataset, with what it knows of the decimals as written."""
    import dataclasses

    from .dataset import Decimals

    cells = {
        (row - start, column): exact
        for (row, column), exact in dataset.decimal_cells.items()
        if start <= row < stop
    }
    decimals = dataset.decimals
    if decimals is not None:
        exponents = decimals.exponents[:, start:stop]
        decimals = Decimals(
            header=decimals.header,
            significands=decimals.significands[:, start:stop],
            exponents=exponents,
            count=int(np.count_nonzero(exponents)),
        )
    return dataclasses.replace(
        dataset,
        X=dataset.X[start:stop],
        y=dataset.y[start:stop],
        decimal_cells=cells,
        decimals=decimals,
    )
