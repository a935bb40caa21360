"""Results remembered while one reference is computed: exact matrix products, elementwise
functions and conversions of floats, each a function of its operands' values alone.

A port's sides and its generic loss are evaluated one after another on the same inputs;
where they compute the same function the same way, as a faithful port does, they convert the
same parameters, take the same tanh of the same values and multiply the same matrices. On the
94k-parameter MLP (benchmarks/gradcheck_mlp.py) each side converts 94k parameters, computes
two tanh layers of 6000 elements and seven products: the second evaluation's are all found
here. A remembered result is the one that would have been computed (the same exact value,
rounded once in the same context: every key holds ``context_key()``), so remembering changes
no number. Callers ask ``active()`` first: outside a reference nothing is hashed or copied.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import gmpy2
import numpy as np


class _Remembered:
    """What was computed while ``results_remembered`` is in force: key → [(check, result)],
    ``check`` confirming a match value by value."""

    depth = 0
    entries: dict = {}
    elements = 0


# The most elements (operands and results together) remembered: about 100 bytes each as
# mpfr, so ≤ 100 MB beyond what the evaluations hold themselves.
REMEMBER_ELEMENTS = 10**6


@contextlib.contextmanager
def results_remembered() -> Iterator[None]:
    """Within it, a result of the same operation on equal values, whatever their history, is
    computed once. Threads share it (the tracers run in one)."""
    state = _Remembered
    if state.depth == 0:
        state.entries, state.elements = {}, 0
    state.depth += 1
    try:
        yield
    finally:
        state.depth -= 1
        if state.depth == 0:
            state.entries, state.elements = {}, 0


def active() -> bool:
    """Whether results are remembered now (else the callers skip making keys and checks)."""
    return _Remembered.depth > 0


def context_key() -> tuple:
    """What of gmpy2's context decides a result: its precision, rounding, exponent range and
    subnormals, and the traps a finite result can set off (inexact, overflow, underflow,
    erange). Not the traps of an invalid operation or a division by zero: the generic loss
    sets them and a port's IEEE evaluation does not, and a result that sets one off is not
    finite. A conversion or exact product of finite numbers never does; an elementwise
    function may, and keeps only finite results (elementwise.py)."""
    c = gmpy2.get_context()
    return (
        c.precision,
        c.round,
        c.emax,
        c.emin,
        c.subnormalize,
        c.trap_inexact,
        c.trap_overflow,
        c.trap_underflow,
        c.trap_erange,
    )


def once(key, check, same: Callable, compute: Callable[[], np.ndarray | None], keep=None):
    """``compute()``, or the copy of a result remembered under ``key`` whose ``check``
    (arrays kept from its operands) ``same(check)`` confirms. Outside
    ``results_remembered``, or for a result too large to keep or that ``keep(result)``
    refuses, simply ``compute()``.
    Results are object or float arrays (or None: not remembered); the caller gets its own
    copy."""
    if not active():
        return compute()
    state = _Remembered
    for seen, result in state.entries.get(key, ()):
        if same(seen):
            return result.copy()  # the caller's own array: nothing it does reaches ours
    result = compute()
    if result is None or (keep is not None and not keep(result)):
        return result
    size = sum(np.size(a) for a in check) + result.size
    if state.elements + size <= REMEMBER_ELEMENTS:
        state.entries.setdefault(key, []).append((check, result.copy()))
        state.elements += size
    return result


def fingerprint(values: np.ndarray, floats: np.ndarray, floats_exact: bool):
    """A hash of the values' float64 roundings (equal values, equal roundings), and what
    confirms a match: a copy of those floats where they are the values, else of the values
    (mpfr numbers are immutable; the arrays holding them need not be)."""
    key = hash(floats.tobytes())
    return key, (floats.copy() if floats_exact else values.copy())


def same_values(seen: np.ndarray, given: np.ndarray) -> bool:
    """Equal values: floats against floats at numpy speed, else value by value (mpfr == float
    compares exactly; a NaN is equal to nothing, so it is computed again)."""
    if seen.shape != given.shape:
        return False
    if seen.dtype != object and given.dtype != object:
        return np.array_equal(seen, given)
    return np.array_equal(seen.astype(object), given.astype(object))
