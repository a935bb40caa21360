"""MPFR numbers read as arrays of 64-bit words and written from them, and bit fields cut from
such words.

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

The other way (``rounded``): an exact product's elements, multiword integers, are rounded to
the working precision here at array speed and become numbers by one ``from_binary`` each,
where a Python int per element, an MPFR addition to round it and a multiplication to scale it
took three times as long (90,000 elements of the MLP's ∂L/∂W2: 0.18 s against 0.06 s).
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


def rounded(integers: np.ndarray, scale: np.ndarray) -> np.ndarray | None:
    """Each row's integer N (``integers``: (n, W) uint64 words of a two's-complement integer,
    least significant first) times 2**scale[row], rounded once to nearest (ties to even) to the
    context's precision: an object array of mpfr equal to ``mpfr(N) * 2**scale`` computed in
    that context (its flags apart: the inexact flag is not raised). None where the context
    does more than round to nearest in a wide exponent range, or a power 2**scale lies
    beyond it (the caller then uses MPFR itself)."""
    context = gmpy2.get_context()
    p = context.precision
    if (
        context.round != gmpy2.RoundToNearest
        or context.subnormalize
        or context.trap_inexact
        or context.emax < 2**20
        or context.emin > -(2**20)
    ):
        return None
    scale = np.asarray(scale, dtype=np.int64)
    if scale.size and (scale.min() + 1 < context.emin or scale.max() + 1 > context.emax):
        return None  # 2**scale itself is beyond the range: MPFR's own 0, ∞ or trap
    n, count = integers.shape
    negative = (integers[:, -1] >> np.uint64(63)) != 0
    magnitude = np.empty_like(integers)
    carry = negative.copy()  # |N| = ~N + 1 where N < 0, the 1 carried word by word
    for j in range(count):
        word = np.where(negative, ~integers[:, j], integers[:, j]) + carry.astype(np.uint64)
        carry &= word == 0
        magnitude[:, j] = word
    nonzero = (magnitude != 0).any(axis=1)
    top_word = count - 1 - np.argmax(magnitude[:, ::-1] != 0, axis=1)
    length = 64 * top_word + _bit_length(magnitude[np.arange(n), top_word])  # of |N|
    # The kept bits: K words from bit length − 64·K up, the top one's top bit set; the bits
    # below the precision's last (64·K − p of them) are cleared, and carried into it if the
    # rounding goes up: the bit below the last kept (``half``) is set and either a bit below
    # it is set (``sticky``: more than half an ulp) or the last kept bit is odd (a tie).
    limbs = -(-p // 64)
    spare = 64 * limbs - p
    start = length - 64 * limbs
    mantissa = np.stack([bits(magnitude, start + 64 * j, 64) for j in range(limbs)], axis=1)
    last = length - p  # the last kept bit's place in |N|
    half = (last > 0) & (bits(magnitude, last - 1, 1) != 0)
    sticky = trailing_zeros(magnitude) < last - 1
    odd = bits(magnitude, last, 1) != 0
    up = half & (sticky | odd) & nonzero
    mantissa[:, 0] &= ~np.uint64(2**spare - 1)
    carry = up.copy()
    for j in range(limbs):
        increment = np.where(carry, np.uint64(1 << spare) if j == 0 else _ONE, np.uint64(0))
        word = mantissa[:, j] + increment
        carry = carry & (word < mantissa[:, j])  # wrapped around
        mantissa[:, j] = word
    mantissa[carry, -1] = np.uint64(1 << 63)  # 0.11…1 rounded up to 1 = 0.1 × 2
    exponent = length + scale + carry
    if nonzero.any() and (
        exponent[nonzero].max() > context.emax or exponent[nonzero].min() < context.emin
    ):
        return None
    width = 12 + 8 * limbs
    blob = np.zeros((n, width), dtype=np.uint8)
    blob[:, 0] = 0x04
    blob[:, 1] = 0x41 | np.where(negative, 0x02, 0) | np.where(exponent < 0, 0x20, 0)
    blob[:, 4:8] = np.array([p], dtype="<u4").view(np.uint8)
    blob[:, 8:12] = np.abs(exponent).astype("<u4").reshape(n, 1).view(np.uint8)
    mantissa[~nonzero, -1] = np.uint64(1 << 63)  # a zero's blob made a number: replaced below
    blob[:, 12:] = mantissa.astype("<u8").view(np.uint8)
    raw = blob.tobytes()
    numbers = np.array(
        list(map(gmpy2.from_binary, [raw[i : i + width] for i in range(0, n * width, width)])),
        dtype=object,
    )
    numbers[~nonzero] = gmpy2.mpfr(0) + 0  # a zero of the context's precision, as MPFR makes it
    return numbers


def _bit_length(words: np.ndarray) -> np.ndarray:
    """The bit length of each uint64 that is not 0."""
    # float64 rounds a word to nearest, at most up to the next power of two: the estimate is
    # the length or one more.
    estimate = np.frexp(words.astype(np.float64))[1].astype(np.int64)
    shift = np.clip(estimate - 1, 0, 63).astype(np.uint64)
    return np.where((words >> shift) == 0, estimate - 1, np.minimum(estimate, 64))
