"""An exact matrix product's elements, multiword integers, are rounded to the working precision
in numpy and made numbers by one ``from_binary`` each (highprec/binary.py ``rounded``): every
number is the one MPFR itself makes from the integer, bit for bit (ties to even, carries into a
new binary order, signs, zeros, exact values, any precision), and where the context asks for
more than rounding to nearest the product is left to MPFR. (Whole products rounded here and
by MPFR are compared in test_exact_products_read_numbers_as_words.py.)"""

from __future__ import annotations

import random

import gmpy2
import numpy as np
import pytest

from gradcmp.reference.highprec import binary


def as_words(integers: list[int], count: int) -> np.ndarray:
    """Two's-complement words, least significant first."""
    raw = b"".join(n.to_bytes(8 * count, "little", signed=True) for n in integers)
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64).reshape(len(integers), count)


def by_mpfr(n: int, scale: int) -> gmpy2.mpfr:
    """What MPFR makes of n · 2**scale in the current context: n rounded once, then scaled."""
    return (gmpy2.mpfr(0) + n) * gmpy2.mul_2exp(gmpy2.mpfr(1), scale)


def hard_integers(rng: random.Random, p: int, bits: int) -> list[int]:
    """Integers below 2**(bits − 1) in magnitude where rounding to p bits is hardest: ties
    (the bit below the last kept set, nothing below it) with an odd and an even last bit, a
    half plus a far sticky bit, runs of ones that carry into a new binary order, exact values
    of p bits or fewer, 0, ±1, the most negative value; each also negated."""
    out = [0, 1, -1, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1]
    for _ in range(40):
        length = rng.randint(1, bits - 1)
        top = rng.getrandbits(length) | (1 << (length - 1))
        cut = length - p
        if cut >= 2:
            kept = top >> cut
            out += [
                (kept << cut) | (1 << (cut - 1)),  # a tie, last bit as it came
                ((kept | 1) << cut) | (1 << (cut - 1)),  # a tie, last bit odd: up
                ((kept & ~1) << cut) | (1 << (cut - 1)),  # a tie, last bit even: stays
                (kept << cut) | (1 << (cut - 1)) | 1,  # just above half: up
                (kept << cut) | ((1 << (cut - 1)) - 1),  # just below half: down
                ((1 << p) - 1) << cut | (1 << (cut - 1)),  # all ones and a half: new order
            ]
        out.append(top)
    out = [n for n in out if -(2 ** (bits - 1)) <= n < 2 ** (bits - 1)]
    return out + [-n for n in out if -n < 2 ** (bits - 1)]


@pytest.mark.parametrize("p", [1, 2, 53, 63, 64, 65, 128, 200, 201, 256])
def test_every_number_is_the_one_mpfr_makes_bit_for_bit(p):
    rng = random.Random(p)
    for count in (1, 2, 5, 9):
        integers = hard_integers(rng, p, 64 * count)
        scales = [rng.randint(-1100, 1100) for _ in integers]
        with gmpy2.context(gmpy2.get_context(), precision=p):
            made = binary.rounded(as_words(integers, count), np.array(scales, dtype=np.int64))
            assert made is not None
            for n, scale, number in zip(integers, scales, made):
                expected = by_mpfr(n, scale)
                assert gmpy2.to_binary(number) == gmpy2.to_binary(expected), (p, count, n, scale)


def test_a_context_beyond_rounding_to_nearest_is_left_to_mpfr():
    words = as_words([3, -5, 2**70 + 1], 2)
    scales = np.zeros(3, dtype=np.int64)
    for changed in (
        {"round": gmpy2.RoundUp},
        {"round": gmpy2.RoundToZero},
        {"subnormalize": True, "emin": -1073, "emax": 1024},
        {"emax": 100},
        {"trap_inexact": True},
    ):
        with gmpy2.context(gmpy2.get_context(), precision=60, **changed):
            assert binary.rounded(words, scales) is None, changed
    with gmpy2.context(gmpy2.get_context(), precision=60):  # a number beyond emax: MPFR's
        assert binary.rounded(words, np.full(3, 2**40, dtype=np.int64)) is None
        # 2**scale itself beyond the range, the number within it: MPFR's own 0 (or 0·∞)
        low = gmpy2.get_context().emin - 2
        assert binary.rounded(as_words([2**200], 4), np.array([low])) is None
        assert by_mpfr(2**200, low) == 0

