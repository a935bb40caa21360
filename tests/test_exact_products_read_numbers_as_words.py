"""An exact matrix product reads its 200-bit operands as 64-bit words at array speed
(highprec/binary.py) instead of one Python integer per element: the products are the same,
bit for bit, and each is the exact sum of exact products rounded once. The word reader
refuses what it cannot read exactly (infinities, NaN, mixed precisions), and its bit
fields are those of Python's integers."""

from __future__ import annotations

import random
from fractions import Fraction

import gmpy2
import numpy as np
import pytest

from gradcmp.reference.highprec import binary, limbs, tracked


def operand(rng, shape) -> np.ndarray:
    """Floats of many binary orders (some 0), most divided by 3 (200 significant bits: made in
    the working precision), some rows spread far apart."""
    floats = rng.normal(size=shape) * 2.0 ** rng.integers(-60, 60, size=shape)
    floats[rng.random(shape) < 0.2] = 0.0
    values = floats.astype(object) + tracked._ZERO
    thirds = np.frompyfunc(lambda a: a / 3, 1, 1)(values)
    mixed = np.where(rng.random(shape) < 0.7, thirds, values)
    mixed.flat[0] = tracked._ONE / 3  # at least one number no float64 holds
    if rng.random() < 0.2:
        mixed = mixed * gmpy2.mul_2exp(tracked._ONE, int(rng.integers(-300, 300)))
    return np.asarray(mixed, dtype=object)


def product(x, y, monkeypatch, as_words: bool, rounded_in_numpy: bool = True):
    with monkeypatch.context() as patch:
        if not as_words:
            patch.setattr(binary, "read", lambda values: None)
        if not rounded_in_numpy:  # MPFR rounds each element's integer instead
            patch.setattr(binary, "rounded", lambda words, scale: None)
        return limbs._compute_exact_matmul(x, x.astype(float), y, y.astype(float), (False,) * 2)


@pytest.mark.parametrize("seed", range(60))
def test_the_product_is_the_same_read_as_words_or_one_by_one(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, 7, size=3))
    with tracked.working_precision():
        x, y = operand(rng, (m, k)), operand(rng, (k, n))
        assert isinstance(limbs._decompose(x, x.astype(float))[1], limbs._Words)  # read as words
        fast = product(x, y, monkeypatch, as_words=True)
        slow = product(x, y, monkeypatch, as_words=False)
        by_mpfr = product(x, y, monkeypatch, as_words=True, rounded_in_numpy=False)
        assert fast is not None and slow is not None and by_mpfr is not None
        for a, b, c in zip(fast.ravel(), slow.ravel(), by_mpfr.ravel()):
            assert gmpy2.to_binary(a) == gmpy2.to_binary(b) == gmpy2.to_binary(c)

        def exact(v) -> Fraction:
            return Fraction(*v.as_integer_ratio())

        for i in range(m):
            for j in range(n):
                total = sum(exact(x[i, q]) * exact(y[q, j]) for q in range(k))
                assert fast[i, j] == gmpy2.mpfr(gmpy2.mpq(total.numerator, total.denominator))


def test_the_reader_refuses_what_it_cannot_read_exactly():
    with tracked.working_precision(ieee=True):
        third = tracked._ONE / 3
        assert binary.read(np.array([third, gmpy2.mpfr("inf")], dtype=object)) is None
        assert binary.read(np.array([third, gmpy2.mpfr("nan")], dtype=object)) is None
        assert binary.read(np.array([third, gmpy2.mpfr(third, 300)], dtype=object)) is None
        negative, nonzero, words, exponent = binary.read(
            np.array([third, -third, tracked._ZERO], dtype=object)
        )
    assert negative.tolist() == [False, True, False] and nonzero.tolist() == [True, True, False]
    mantissa = sum(int(w) << (64 * i) for i, w in enumerate(words[0]))
    value = Fraction(mantissa) * Fraction(2) ** int(exponent[0] - 64 * words.shape[1])
    assert value == Fraction(*third.as_integer_ratio())


def test_bit_fields_and_trailing_zeros_are_those_of_python_integers():
    rnd = random.Random(0)
    numbers = [0, 1, 2**64, 2**191 + 5, (2**200 - 1) << 56] + [
        rnd.getrandbits(rnd.randrange(1, 256)) << rnd.randrange(0, 8) for _ in range(200)
    ]
    words = np.array(
        [[(v >> (64 * i)) & (2**64 - 1) for i in range(5)] for v in numbers], dtype=np.uint64
    )
    zeros = binary.trailing_zeros(words)
    for v, z in zip(numbers, zeros.tolist()):
        assert z == ((v & -v).bit_length() - 1 if v else 0)
    for width in (8, 16, 24, 64):
        start = np.array([rnd.randrange(-400, 400) for _ in numbers])
        got = binary.bits(words, start, width)
        for v, s, b in zip(numbers, start.tolist(), got.tolist()):
            shifted = v >> s if s >= 0 else v << -s
            assert b == shifted & (2**width - 1)
