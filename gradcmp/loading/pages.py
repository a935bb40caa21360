"""Memory a dataset's arrays take, kept to what is in use.

A memory-mapped file (a ``.npy`` dataset, read in place) is the float64 master copy without
costing memory of its own until its pages are read; once read they stay mapped, and counted,
until the process lets them go. Passes over the whole master therefore go a part at a time
(``parts``) and hand each part's pages back to the page cache when done (``release``: the
next read maps them again from the cache, unchanged). Arrays made from the master (the
inputs in a dtype) go in fresh memory aligned to a page (``fresh``), which JAX on a CPU can
use in place instead of copying.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator

import numpy as np

# Rows per part of a pass over the master: ≈1 MB of float64 per column.
PART_ROWS = 1 << 17
# Below this size an array is made the ordinary way (a part at a time gains nothing).
SMALL_BYTES = 1 << 20


def fresh(shape, dtype) -> np.ndarray:
    """A zeroed array in fresh anonymous memory, aligned to a page (its pages are made as they
    are written).

    Not numpy's allocator: numpy asks the kernel for transparent huge pages on large arrays,
    and where the kernel defragments memory to make them (``defrag=madvise``, the common
    setting) a freshly started process waited ≈0.3 s of a 0.45 s read of 390 MB for them.
    """
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if size == 0 or not hasattr(mmap, "MAP_ANONYMOUS"):  # (Windows: numpy's own)
        return np.zeros(shape, dtype=dtype)
    memory = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    return np.frombuffer(memory, dtype=dtype).reshape(shape)


def _file_map(array: np.ndarray):
    """The read-only file mapping under ``array`` (np.memmap's), or None."""
    owner = array
    while owner is not None:
        mapped = getattr(owner, "_mmap", None)
        if isinstance(mapped, mmap.mmap):
            return mapped if getattr(owner, "mode", None) == "r" else None
        owner = getattr(owner, "base", None)
    return None


def release(array: np.ndarray) -> None:
    """Let go of this process's mapping of the file pages under ``array`` where it is a view
    of a read-only memory-mapped file (the pages stay in the page cache and are mapped again,
    unchanged, when read); anything else is left alone."""
    mapped = _file_map(array) if isinstance(array, np.ndarray) and array.size else None
    if mapped is None or not hasattr(mapped, "madvise"):
        return
    base = np.frombuffer(mapped, dtype=np.uint8)
    try:
        start = base.ctypes.data
        low = high = array.ctypes.data  # the bytes the array spans: [low, high)
        for length, stride in zip(array.shape, array.strides):
            reach = (length - 1) * stride
            low, high = (low + reach, high) if reach < 0 else (low, high + reach)
        high += array.itemsize
        page = mmap.PAGESIZE
        first = max(0, (low - start) // page * page)
        last = min(len(mapped), -(-(high - start) // page) * page)
        if last > first:
            mapped.madvise(mmap.MADV_DONTNEED, first, last - first)
    finally:
        del base


def parts(array: np.ndarray, rows: int = PART_ROWS) -> Iterator[tuple[int, int, np.ndarray]]:
    """(start, stop, array[start:stop]) over the rows, each part's file pages let go once the
    caller is done with it."""
    for start in range(0, len(array), rows):
        stop = min(start + rows, len(array))
        part = array[start:stop]
        yield start, stop, part
        release(part)


def received(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` in ``dtype``, C-contiguous: the array itself where it is so already, else a
    copy made a part at a time (in fresh, page-aligned memory when large), the master's file
    pages let go behind it. The same values as ``astype``: the same casts."""
    dtype = np.dtype(dtype)
    if array.dtype == dtype and array.flags.c_contiguous:
        return array
    if array.size * dtype.itemsize < SMALL_BYTES:
        return np.ascontiguousarray(np.asarray(array).astype(dtype))
    out = fresh(array.shape, dtype)
    for start, stop, part in parts(array):
        out[start:stop] = part.astype(dtype)
    return out
