"""Matrix products on float64 BLAS, exactly; BLAS on one thread meanwhile.

A product of two object arrays costs one MPFR multiply and one add per term, some 150 ns
each with Python's object protocol around them. Instead the operands are cut into integer
limbs (fixed point per row of x and per column of y), the limbs multiplied by float64
matrix products — exact, since every partial sum is an integer below 2**53 — and the
products recombined as multiword integers, rounded in numpy (binary.py): each element of
x @ y is its exact value, rounded once to the working precision.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
from collections.abc import Iterator
from typing import NamedTuple

import gmpy2
import numpy as np

from . import binary, remembered
from .tracked import _ONE, _ZERO

# The most limbs one number may need (its row's spread of binary orders plus its significant
# bits): beyond, the product is computed element by element.
LIMB_LIMIT = 48


def _decompose(values: np.ndarray, floats: np.ndarray, floats_exact: bool = False):
    """Each element of ``values`` (2-d, mpfr; ``floats`` their float64 roundings, the values
    themselves where ``floats_exact``, as the caller knows) as
    sign · mantissa · 2**low with an odd mantissa (0 for 0), and top = low + its bit length;
    the mantissas as ``_Words`` (one word each when every value is a float64 number, else the
    numbers as MPFR writes them, binary.py), else Python ints.
    Returns (sign, mantissa, low, top, nonzero, width): width is the most bits a row spans."""
    rows, k = values.shape
    if floats_exact or np.array_equal(values, floats.astype(object)):  # float64: numpy
        fraction, top = np.frexp(floats)  # |fraction| in [1/2, 1): 53 significant bits
        mantissa = np.abs(np.ldexp(fraction, 53)).astype(np.uint64)
        sign = np.sign(floats)
        trailing = binary.trailing_zeros(mantissa.reshape(-1, 1)).reshape(rows, k)
        mantissa >>= trailing.astype(np.uint64)
        low = top.astype(np.int64) - 53 + trailing
        top = top.astype(np.int64)
        nonzero = mantissa != 0
        mantissa = _Words(mantissa.reshape(-1, 1), low.ravel())
    elif (parsed := binary.read(values.ravel())) is not None:  # at array speed
        negative, nonzero, words, exponent = parsed
        base = exponent - 64 * words.shape[1]  # |value| = words · 2**base
        sign = np.where(negative, -1.0, 1.0).reshape(rows, k)
        mantissa = _Words(words, base)
        low = (base + binary.trailing_zeros(words)).reshape(rows, k)
        top = exponent.reshape(rows, k)
        nonzero = nonzero.reshape(rows, k)
    else:  # one by one
        sign, mantissa, low, top = [], [], [], []
        for value in values.ravel().tolist():
            m, e = value.as_mantissa_exp()
            m = abs(int(m))
            tz = gmpy2.bit_scan1(m) or 0
            m >>= tz
            sign.append(-1.0 if value < 0 else 1.0)
            mantissa.append(m)
            low.append(int(e) + tz)
            top.append(int(e) + tz + m.bit_length())
        sign = np.array(sign).reshape(rows, k)
        low = np.array(low, dtype=np.int64).reshape(rows, k)
        top = np.array(top, dtype=np.int64).reshape(rows, k)
        nonzero = np.array([m != 0 for m in mantissa]).reshape(rows, k)
    row_top = np.max(np.where(nonzero, top, np.iinfo(np.int64).min), axis=1, initial=0)
    row_low = np.min(np.where(nonzero, low, np.iinfo(np.int64).max), axis=1, initial=0)
    width = int(np.max(np.where(nonzero.any(axis=1), row_top - row_low, 0), initial=0))
    return sign, mantissa, low, row_top, nonzero, width


def _limbs(decomposed, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows in fixed point: values[r, k] = 2**scale[r] · Σ_l limbs[l, r, k]·2**(bits·l),
    the limbs signed integers of magnitude < 2**bits (float64)."""
    sign, mantissa, low, row_top, nonzero, width = decomposed
    rows, k = sign.shape
    count = max(-(-width // bits), 1)
    scale = np.where(nonzero.any(axis=1), row_top, 0) - count * bits
    if isinstance(mantissa, _Words):  # limb l: the words' bits from scale + l·bits up
        limbs = np.empty((count, rows, k))
        base = mantissa.base.reshape(rows, k)
        for limb in range(count):
            start = (scale[:, None] + limb * bits - base).ravel()
            limbs[limb] = binary.bits(mantissa.words, start, bits).reshape(rows, k)
        return limbs * sign, scale
    shift = np.where(nonzero, low - scale[:, None], 0)  # ≥ 0: the value's bits start there
    size = count * bits // 8
    raw = b"".join(
        (m << s).to_bytes(size, "little") for m, s in zip(mantissa, shift.ravel().tolist())
    )
    octets = np.frombuffer(raw, dtype=np.uint8).reshape(rows * k, count, bits // 8)
    limbs = np.zeros((rows * k, count))
    for i in range(bits // 8):
        limbs += octets[:, :, i] * float(256**i)
    return limbs.T.reshape(count, rows, k) * sign, scale


class _Words(NamedTuple):
    """Magnitudes as rows of 64-bit words (least significant first): words · 2**base."""

    words: np.ndarray
    base: np.ndarray



def _exact_matmul(xv, xf, yv, yf, exact=(False, False)) -> np.ndarray | None:
    """x @ y for 2-d object arrays of finite mpfr (xf, yf: their float64 roundings; ``exact``:
    whether each side's values are those floats), each element the exact sum of the exact
    products, rounded once; None where the limbs do not fit (the caller multiplies element
    by element). Remembered within ``remembered.results_remembered``."""
    if not (np.isfinite(xf).all() and np.isfinite(yf).all()):
        return None
    if not remembered.active():
        return _compute_exact_matmul(xv, xf, yv, yf, exact)
    (x_key, x_check), (y_key, y_check) = (
        remembered.fingerprint(xv, xf, exact[0]),
        remembered.fingerprint(yv, yf, exact[1]),
    )
    return remembered.once(
        ("matmul", xv.shape, yv.shape, remembered.context_key(), x_key, y_key),
        (x_check, y_check),
        lambda seen: remembered.same_values(seen[0], x_check)
        and remembered.same_values(seen[1], y_check),
        lambda: _compute_exact_matmul(xv, xf, yv, yf, exact),
    )


def _compute_exact_matmul(xv, xf, yv, yf, exact) -> np.ndarray | None:
    k = xv.shape[1]
    left, right = _decompose(xv, xf, exact[0]), _decompose(yv.T, yf.T, exact[1])
    # The widest limbs (24, 16 or 8 bits) for which one digit of the product — the sum over
    # the limb pairs l + m = d and over k — stays below 2**53 in every order: float64 matrix
    # products compute it exactly.
    for bits in (24, 16, 8):
        n_x, n_y = (max(-(-side[-1] // bits), 1) for side in (left, right))
        if min(n_x, n_y) * k * (2**bits - 1) ** 2 < 2**53:
            break
    else:
        return None
    if max(n_x, n_y) > LIMB_LIMIT:
        return None
    (x_limbs, x_scale), (y_limbs, y_scale) = _limbs(left, bits), _limbs(right, bits)
    rows, columns = x_limbs.shape[1], y_limbs.shape[1]
    digits = n_x + n_y - 1
    # Digit d of the product: Σ over l + m = d of x_limbs[l] @ y_limbs[m]ᵀ, one matrix
    # product of the limbs side by side. Side by side once: x's limbs in order along k, y's
    # in reverse, so that each digit's pairs are one slice of each (views that BLAS reads
    # in place, the antidiagonal l = first … last against m = d − first … d − last).
    x_side = x_limbs.transpose(1, 0, 2).reshape(rows, n_x * k)
    y_side = y_limbs[::-1].transpose(1, 0, 2).reshape(columns, n_y * k)
    sums = np.empty((digits, rows, columns), dtype=np.int64)
    for d in range(digits):
        first, last = max(0, d - n_y + 1), min(d, n_x - 1)
        reverse = n_y - 1 - (d - first)  # y's limb d − first in the reversed order
        pairs = last - first + 1
        sums[d] = (
            x_side[:, first * k : (first + pairs) * k]
            @ y_side[:, reverse * k : (reverse + pairs) * k].T
        )
    # Carry into base-2**bits digits (floor division: the digits are ≥ 0, the carry signed),
    # then each element's integer as 64-bit words: digits little-endian, the carry on top in
    # two's complement (sign-extended). Built digit-major, one row of bytes per digit
    # (contiguous writes), and turned element-major once.
    size, octets = rows * columns, bits // 8
    count = -(-(digits * octets + 8) // 8)
    buffer = np.empty((8 * count, size), dtype=np.uint8)
    flat = sums.reshape(digits, size)
    carry, total = np.zeros(size, dtype=np.int64), np.empty(size, dtype=np.int64)
    mask = np.int64(2**bits - 1)
    for d in range(digits):
        np.add(flat[d], carry, out=total)
        digit = total & mask
        for o in range(octets):
            buffer[d * octets + o] = (digit >> (8 * o)).astype(np.uint8)
        np.right_shift(total, bits, out=carry)
    top = digits * octets
    buffer[top : top + 8] = carry.astype("<i8").view(np.uint8).reshape(size, 8).T
    buffer[top + 8 :] = np.where(carry < 0, 0xFF, 0).astype(np.uint8)
    words = np.ascontiguousarray(buffer.T).view("<u8").astype(np.uint64)
    scale = x_scale[:, None] + y_scale[None, :]
    product = binary.rounded(words, scale.ravel())
    if product is not None:
        return product.reshape(rows, columns)
    # The context does more than round to nearest: MPFR rounds each integer (0 + n rounds
    # once; ×2**e is exact, and ten times faster than mul_2exp).
    raw, width = words.astype("<u8").tobytes(), 8 * count
    integers = np.array(
        [
            int.from_bytes(raw[i : i + width], "little", signed=True)
            for i in range(0, size * width, width)
        ],
        dtype=object,
    )
    exponents, which = np.unique(scale, return_inverse=True)
    powers = np.array([gmpy2.mul_2exp(_ONE, e) for e in exponents.tolist()], dtype=object)
    return ((integers + _ZERO) * powers[which.ravel()]).reshape(rows, columns)


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """numpy's OpenBLAS on one thread while the reference runs. Its matrix products here are
    small, and where the other cores are busy (gradcmp's backend workers run beside the
    reference) a second BLAS thread waiting for a core makes them several times slower."""
    calls = _blas_thread_calls()
    if calls is None:
        yield
        return
    get, set_ = calls
    previous = get()
    set_(1)
    try:
        yield
    finally:
        set_(previous)


@functools.cache
def _blas_thread_calls():
    """(get_num_threads, set_num_threads) of the OpenBLAS inside numpy's wheel, or None."""
    root = os.path.dirname(np.__file__)
    paths = glob.glob(os.path.join(root, os.pardir, "numpy.libs", "*openblas*"))
    paths += glob.glob(os.path.join(root, ".dylibs", "*openblas*"))
    for path in paths:
        try:
            library = ctypes.CDLL(path)  # already loaded by numpy: the same library
        except OSError:
            continue
        for name in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                get = getattr(library, f"{name}_get_num_threads{suffix}", None)
                set_ = getattr(library, f"{name}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    return get, set_
    return None
