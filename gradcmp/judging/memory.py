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
