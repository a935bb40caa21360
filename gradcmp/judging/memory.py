"""How much memory a call takes at its peak: this process's resident high-water mark, reset
before the call (Linux: /proc/self/clear_refs and /proc/self/status; None elsewhere). Used
for each backend call's ``peak_bytes`` (execute.py) and by ``gradcmp bench``."""

from __future__ import annotations


def _status_bytes(field_name: str) -> int | None:
    """A ``/proc/self/status`` figure (VmRSS, VmHWM) in bytes, or None (not Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def resident_bytes_reset() -> int | None:
    """This process's resident bytes now, its high-water mark reset to them (Linux ≥ 4.0:
    ``5`` to /proc/self/clear_refs); None where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return None
    return _status_bytes("VmRSS")


def peak_since(before: int | None) -> int | None:
    """How far the high-water mark rose above ``before`` (resident bytes at the reset)."""
    if before is None:
        return None
    peak = _status_bytes("VmHWM")
    return None if peak is None else max(0, peak - before)


# glibc's mallopt parameter for the size from which an allocation is a mapping of its own.
_M_MMAP_THRESHOLD = -3


def large_blocks_mapped(threshold: int = 2**20) -> None:
    """From here on, every allocation of ``threshold`` bytes or more is a mapping of its own,
    handed back to the system when freed (glibc's ``mallopt(M_MMAP_THRESHOLD)``; elsewhere
    nothing happens).

    glibc starts at 128 KiB but raises the threshold to the size of each large block freed,
    up to 32 MiB: after the first row block of a large dataset, a framework's block-sized
    tensors come from the heap, where fragmentation keeps them. In a framework worker that
    held some 50 MB past the data's own pages at 10⁷ rows (benchmarks/memory.py). A fixed
    threshold also turns that adjustment off. Only for gradcmp's own worker processes: a
    library does not retune its caller's allocator."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to tune
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, threshold)
