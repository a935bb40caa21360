"""The C reader's driver: a CSV file's rows read by C calls on parts of the file in threads,
into shared arrays (``read_rows``). The rules and every message live in csvfile.py."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .pages import fresh

try:  # the C reader (setup.py builds it where a compiler is at hand)
    from .. import _fastcsv
except ImportError:  # pragma: no cover - the pure-Python reader does the same, slower
    _fastcsv = None


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


def read_rows(raw, data_start: int, first_line: int, ncols: int, exact_room: bool = False):
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
    values = fresh((ncols, row0), np.float64)
    significands = fresh((ncols, row0), np.int64)
    exponents = fresh((ncols, row0), np.int8)  # 0: no decimal kept in this cell

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
        return read_rows(raw, data_start, first_line, ncols, exact_room=True)
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
