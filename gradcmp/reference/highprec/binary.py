"""MPFR numbers read as arrays of 64-bit words, and bit fields cut from such words.

An exact matrix product (limbs.py) cuts its operands into small integer limbs. For 200-bit
operands that meant a Python loop per element (its mantissa, exponent and trailing zeros
one call at a time): 0.1 s for the 42,000 such elements of the 94k-parameter MLP's
gradient. Here the numbers are read from gmpy2's binary format, one ``to_binary`` per
element and the rest at array speed.

gmpy2's format for a regular mpfr with 64-bit limbs (gmpy2_binary.c, ``to_binary``): byte 0 =
0x04; byte 1 = flags, 0x01 (a regular number) | 0x02 (negative) | 0x04 (8-byte fields) | 0x20
(negative exponent) | 0x40 (64-bit limbs); bytes 2–3 = the last rounding's direction and 0;
the precision p and |exponent| as 4-byte little-endian integers; then the mantissa's
ceil(p / 64) limbs, least significant first, the top bit set: the value is
0.1b₂b₃… × 2**exponent. A zero, an infinity or a NaN is 8 bytes (flags without 0x01).
"""

from __future__ import annotations

import gmpy2
import numpy as np

_ONE = np.uint64(1)


def read(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Finite mpfr ``values`` (1-d object array) as (negative, nonzero, words (n, k) uint64,
    exponent (n,) int64): |value| = words · 2**(exponent − 64·k), the words of a zero 0. None
    where they are not all mpfr zeros and regular numbers of one limb count (MPFR keeps the
    bits below a number's precision 0) in 4-byte fields."""
    blobs = list(map(gmpy2.to_binary, values.tolist()))
    lengths = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    raw = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flags = raw[offsets + 1] if len(raw) else np.zeros(0, dtype=np.uint8)
    if len(raw) and (raw[offsets] != 0x04).any():  # not an mpfr
        return None
    nonzero = (flags & 0x01) != 0
    n = len(values)
    if ((flags[~nonzero] & 0x18) != 0).any():  # an infinity or a NaN
        return None
    size = np.unique(lengths[nonzero])
    if size.size == 0:
        return np.zeros(n, dtype=bool), nonzero, np.zeros((n, 1), np.uint64), np.zeros(n, np.int64)
    if size.size > 1 or (size[0] - 12) % 8 or ((flags[nonzero] & 0x44) != 0x40).any():
        return None
    width = int(size[0])
    count = (width - 12) // 8
    rows = raw[offsets[nonzero, None] + np.arange(width)]
    words = np.zeros((n, count), dtype=np.uint64)
    words[nonzero] = rows[:, 12:].copy().view("<u8").astype(np.uint64)
    magnitude = rows[:, 8:12].copy().view("<u4").astype(np.int64).ravel()
    exponent = np.zeros(n, dtype=np.int64)
    exponent[nonzero] = np.where((flags[nonzero] & 0x20) != 0, -magnitude, magnitude)
    negative = (flags & 0x02) != 0
    return negative & nonzero, nonzero, words, exponent


def trailing_zeros(words: np.ndarray) -> np.ndarray:
    """The trailing zero bits of each row's multiword integer (0 for 0)."""
    if words.shape[1] == 1:  # a float64's mantissa
        first, word = 0, words[:, 0]
    else:
        first = np.argmax(words != 0, axis=1)  # the lowest word that is not 0
        word = words[np.arange(len(words)), first]
    lowest = word & (~word + _ONE)  # the lowest set bit, a power of two: exact in float64
    within = np.log2(np.maximum(lowest, _ONE).astype(np.float64)).astype(np.int64)
    return np.where(word != 0, 64 * first + within, 0)


def bits(words: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """Bits [start, start + width) of each row's multiword integer (words least significant
    first), width ≤ 64, as uint64; bits below 0 or above the words are 0. ``start`` may be
    any integer per row."""
    n, count = words.shape
    rows = np.arange(n)
    index = start // 64
    shift = (start % 64).astype(np.uint64)

    def word(i: np.ndarray) -> np.ndarray:
        if count == 1:  # a float64's mantissa: no gather
            return np.where(i == 0, words[:, 0], np.uint64(0))
        inside = (i >= 0) & (i < count)
        return np.where(inside, words[rows, np.clip(i, 0, count - 1)], np.uint64(0))

    low = word(index) >> shift
    high = word(index + 1) << (np.uint64(64) - np.maximum(shift, _ONE))
    window = low | np.where(shift == 0, np.uint64(0), high)
    mask = np.uint64(2**64 - 1) if width == 64 else np.uint64(2**width - 1)
    return window & mask
