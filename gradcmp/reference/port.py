"""The port verdict: do the sides of a loss file compute the same function?

Each side (``loss_torch``, ``loss_jax``, and the generic ``loss`` where the file has one) has
an exact reference: its own loss and gradient at the float64 inputs, evaluated in 200-bit
MPFR (the framework sides by shadow evaluation of their own graphs). Every pair of sides is
compared output by output, exactly, in Fractions.

Two values are the *same* when |a − b| ≤ 2**-150 · max(|a|, |b|, M_a, M_b), M the output's
magnitude (the sum of its terms' sizes). The evaluation carries 200 bits, so two sides that
compute one function in different ways (another summation order, ``mean`` against ``sum/n``)
differ only by its rounding, about 2**-200 of M per operation — far below 2**-150 for any
graph of fewer than 2**40 operations. A semantic difference (another eps, another
activation, a missing ½) is 1e-12 or more, far above. No float rounding enters here: nothing
is computed in a framework dtype.

One thing between the two: the frameworks' graphs hold float64 *constants*, each a rounding
of its true value (1/√2, 2/√π and √(2/π) in the derivative rules of erf and gelu, a
``log(2)``), and two frameworks round different ones, so their exact semantics differ by a few
2**-53 of M — one correct GELU port parts from its twin by ~1e-15 in its gradient. A
difference of at most 2**-40 · max(|a|, |b|, M_a, M_b) (thousands of such roundings) is taken
for that: the sides compute the same function to float64 resolution, no float64 run could
tell them apart, and the verdict is ``same`` (the difference is listed, with that hint).

Verdicts:

- ``same``: every output is the same, or differs by no more than ``accept``, the relative
  difference the user accepts (such a difference is still listed, and named in the note);
- ``different``: some output differs beyond both;
- ``convention``: the losses agree, a gradient differs, and an op on a side ran exactly at a
  kink or tie (relu at 0, max of equal elements): the frameworks' derivative conventions
  differ there, which is not a bug in either port but still fails the run;
- ``unknown``: some side has no high-precision reference (``unknown()``).

Where the sides differ, ``align.locate`` names the op on each side where they first part.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .align import RESOLUTION, Divergence, locate
from .bug_kinds import bug_kind
from .port_differences import (
    ARRAY_THRESHOLD,
    SAME_BITS,
    _differences,
    _differences_of_arrays,
    relative,
    same_value,
)

if TYPE_CHECKING:
    from .shadow import ShadowGraph
    from .values import ReferenceValues

CONSTANTS_HINT = "only the float64 rounding of the frameworks' own constants"
SAME, DIFFERENT, CONVENTION, UNKNOWN = "same", "different", "convention", "unknown"
MAX_KINKS_IN_NOTE = 3  # per side; the JSON lists them all


@dataclass(frozen=True)
class Difference:
    """Two sides whose outputs differ beyond the evaluation's resolution."""

    sides: tuple[str, str]
    loss_rel: float  # 0 where the losses are the same
    worst: str  # the worst-differing gradient element ("loss" where no gradient differs)
    worst_rel: float
    hint: str = ""  # the likely bug (bug_kinds), '' where no pattern is clear


@dataclass(frozen=True)
class KinkNote:
    """An op that ran exactly at a kink or tie, and the side's convention there."""

    side: str
    file: str
    line: int
    op: str
    note: str


@dataclass(frozen=True)
class PortVerdict:
    verdict: str  # same | different | convention | unknown
    sides: tuple[str, ...]
    differences: tuple[Difference, ...]
    divergence: tuple[Divergence, ...]  # one per side of the located pair; () when same
    kinks: tuple[KinkNote, ...]
    note: str  # one line for people
    accepted: float = 0.0  # the relative difference the user accepts (still reported)

    @property
    def fails(self) -> bool:
        """A different function (beyond ``accepted``) or a convention difference: exit 1."""
        return self.verdict in (DIFFERENT, CONVENTION)

    def to_dict(self) -> dict:
        """The JSON contract; non-finite numbers as the strings "inf", "-inf", "nan"."""
        return {
            "verdict": self.verdict,
            "sides": list(self.sides),
            "differences": [
                {
                    "sides": list(d.sides),
                    "loss_rel": _json_number(d.loss_rel),
                    "worst": {"name": d.worst, "rel": _json_number(d.worst_rel)},
                    "hint": d.hint,
                }
                for d in self.differences
            ],
            # the fields are the contract's keys, in its order
            "divergence": [{**asdict(d), "rel": _json_number(d.rel)} for d in self.divergence],
            "kinks": [asdict(k) for k in self.kinks],
            "note": self.note,
            "accepted": _json_number(self.accepted),
        }


def unknown(sides, why: str) -> PortVerdict:
    """No verdict: some side has no high-precision reference (``why`` says which, and why)."""
    return PortVerdict(UNKNOWN, tuple(sides), (), (), (), why)


@dataclass(frozen=True)
class _Pair:
    difference: Difference
    status: str  # different | convention | accepted | constants
    start: str  # the output the divergence walk starts from


def _compare(
    a: str,
    b: str,
    ra: ReferenceValues,
    rb: ReferenceValues,
    kinked: bool,
    accept: float,
    rows: int | None,
) -> _Pair | None:
    """How sides ``a`` and ``b`` differ (None: every output is the same)."""
    arrays_a, arrays_b = ra.arrays, rb.arrays
    if (
        arrays_a is not None
        and arrays_b is not None
        and len(arrays_a) > ARRAY_THRESHOLD
        and arrays_a.names == arrays_b.names
    ):
        rels, slight = _differences_of_arrays(ra, rb)
    else:
        rels, slight = _differences(ra, rb)
    if not rels and not slight:
        return None
    found = rels or slight
    loss_rel = found.get("loss", 0.0)
    grads = {k: r for k, r in found.items() if k != "loss"}
    worst = max(grads, key=grads.__getitem__) if grads else "loss"
    worst_rel = grads[worst] if grads else loss_rel
    if not rels:
        difference = Difference((a, b), loss_rel, worst, worst_rel, CONSTANTS_HINT)
        return _Pair(difference, "constants", worst)
    hint = bug_kind(rb.floats(), ra.floats(), rows)
    if not max(rels.values()) > accept:
        status = "accepted"
    elif loss_rel <= accept and grads and kinked:
        status = CONVENTION
    else:
        status = DIFFERENT
    # The walk starts from the loss where it differs; at a convention, from the gradient.
    start = "loss" if "loss" in rels and status != CONVENTION else worst
    return _Pair(Difference((a, b), loss_rel, worst, worst_rel, hint), status, start)


def port_verdict(
    references: dict[str, ReferenceValues],
    graphs: dict[str, ShadowGraph],
    *,
    accept: float = 0.0,
    rows: int | None = None,
) -> PortVerdict:
    """The verdict on the sides of ``references`` (side → its exact values at the float64
    inputs); ``graphs`` (side → shadow graph; the generic ``loss`` has none) locate where
    sides part and hold the kinks; ``rows`` lets the hint name an n−1 divisor."""
    sides = tuple(references)
    graphs = {k: g for k, g in graphs.items() if g is not None and k in references}
    kinks = tuple(
        KinkNote(side, s.file, s.line, s.op, s.kink)
        for side, g in graphs.items()
        for s in g.kinks()
    )
    kinked = {side for side, g in graphs.items() if g.kinks()}
    pairs: list[_Pair] = []
    for a, b in itertools.combinations(sides, 2):
        pair = _compare(a, b, references[a], references[b], bool({a, b} & kinked), accept, rows)
        if pair is not None:
            pairs.append(pair)
    differences = tuple(p.difference for p in pairs)
    failing = [p for p in pairs if p.status in (DIFFERENT, CONVENTION)]
    if not failing:
        note = _same_note(sides, pairs, accept)
        if kinks:
            note += (
                f"; {len(kinks)} op(s) ran exactly at a kink or tie, where the sides' "
                "conventions give the same gradient here"
            )
        return PortVerdict(SAME, sides, differences, (), kinks, note, accept)
    verdict = DIFFERENT if any(p.status == DIFFERENT for p in failing) else CONVENTION
    shown = [p for p in failing if p.status == verdict]
    located = next((p for p in shown if set(p.difference.sides) <= set(graphs)), None)
    divergence: tuple[Divergence, ...] = ()
    failure = ""
    if located is not None:
        a, b = located.difference.sides
        try:
            divergence = locate(graphs[a], graphs[b], located.start)
        except (ValueError, KeyError) as exc:  # a graph without that output
            failure = f"not located: {exc}"
    if verdict == DIFFERENT:
        note = _different_note(sides, failing, shown, divergence, failure)
    else:
        note = _convention_note(shown[0], graphs, divergence)
    accepted = [p for p in pairs if p.status == "accepted"]
    if accepted:
        note += "; " + _accepted_text(accepted, accept)
    return PortVerdict(verdict, sides, differences, divergence, kinks, note, accept)


# --- notes ----------------------------------------------------------------------------------


def _num(x: float) -> str:
    """4.0e-4, not 4.0e-04."""
    if not math.isfinite(x):
        return str(x)
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:.1e}")


def _accept_text(x: float) -> str:
    return re.sub(r"e([+-])0*(\d)", r"e\1\2", f"{x:g}")


def _names(sides) -> str:
    sides = list(sides)
    return sides[0] if len(sides) == 1 else f"{', '.join(sides[:-1])} and {sides[-1]}"


def _sizes(d: Difference, hint: bool = True) -> str:
    loss = f"loss rel {_num(d.loss_rel)}" if d.loss_rel else "the losses agree"
    grad = "the gradients agree"
    if d.worst != "loss":
        grad = f"worst gradient {d.worst} rel {_num(d.worst_rel)}"
    return f"{loss}, {grad}" + (f" ({d.hint})" if d.hint and hint else "")


def _place(d: Divergence) -> str:
    where = f"{Path(d.file).name}:{d.line}" if d.file and d.line else (d.file or "?")
    return f"{where} ({d.op})"


def _where_text(divergence: tuple[Divergence, ...], failure: str, odd: str) -> str:
    if failure:
        return f"; {failure}"
    if not divergence:
        return ""
    if all(d.rel <= RESOLUTION for d in divergence):
        return "; the sides part below float64 resolution, so no step shows where"
    mine = [d for d in divergence if d.side == odd] or list(divergence[-1:])
    text = f"; first parts at {_place(mine[0])}"
    others = [d for d in divergence if d is not mine[0]]
    if others:
        text += ", against " + ", ".join(f"{_place(d)} in {d.side}" for d in others)
    return text


def _odd_side(sides: tuple[str, ...], failing: list[_Pair]) -> str | None:
    """The side that differs from every other side while those agree among themselves (with
    two sides, the second: the port of the first); None where there is no such side."""
    if len(sides) == 2:
        return sides[1]
    differing = {frozenset(p.difference.sides) for p in failing}
    for s in sides:
        if differing == {frozenset((s, t)) for t in sides if t != s}:
            return s
    return None


def _different_note(sides, failing, shown, divergence, failure) -> str:
    """ "loss_jax computes a different function: loss rel 4.0e-4, worst gradient W1[3,2]
    rel 1.1e-3; first parts at port.py:14 (tanh), against port.py:9 (gelu) in loss_torch"."""
    odd = _odd_side(sides, failing)
    if odd is None:
        head, pair = f"{_names(sides)} compute different functions", shown[0]
    else:
        head = f"{odd} computes a different function"
        if len(sides) > 2:
            head += f" from {_names(s for s in sides if s != odd)}"
        pair = next(p for p in shown if odd in p.difference.sides)
    return f"{head}: {_sizes(pair.difference)}{_where_text(divergence, failure, odd or '')}"


def _convention_note(pair: _Pair, graphs, divergence) -> str:
    a, b = pair.difference.sides
    d = pair.difference
    conventions = []
    for side in (a, b):
        steps = graphs[side].kinks() if side in graphs else []
        if not steps:
            conventions.append(f"{side}: no kink recorded")
            continue
        shown = [
            f"{s.op} at {Path(s.file).name}:{s.line}: {s.kink}" if s.file else f"{s.op}: {s.kink}"
            for s in steps[:MAX_KINKS_IN_NOTE]
        ]
        more = len(steps) - MAX_KINKS_IN_NOTE
        conventions.append(
            f"{side}: " + "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")
        )
    text = (
        f"{a} and {b} agree on the loss but gradient {d.worst} differs (rel "
        f"{_num(d.worst_rel)}) where an op ran exactly at a kink, by each framework's "
        f"convention — {' | '.join(conventions)}"
    )
    if divergence and not all(x.rel <= RESOLUTION for x in divergence):
        text += "; first parts at " + ", ".join(f"{_place(x)} in {x.side}" for x in divergence)
    return text


def _accepted_text(pairs: list[_Pair], accept: float) -> str:
    return "; ".join(
        f"{p.difference.sides[1]} differs from {p.difference.sides[0]} within the accepted "
        f"{_accept_text(accept)} ({_sizes(p.difference)})"
        for p in pairs
    )


def _same_note(sides, pairs: list[_Pair], accept: float) -> str:
    if not pairs:
        return (
            f"{_names(sides)} compute the same function: the loss and every gradient element "
            f"agree to 2**-{SAME_BITS} of their size"
        )
    parts = []
    constants = [p.difference for p in pairs if p.status == "constants"]
    if constants:
        parts.append(
            f"to float64 resolution: they part only by the float64 rounding of their "
            f"frameworks' own constants ({_largest_sizes(constants)})"
        )
    accepted = [p for p in pairs if p.status == "accepted"]
    if accepted:
        parts.append(f"up to what is accepted: {_accepted_text(accepted, accept)}")
    return f"{_names(sides)} compute the same function " + "; and ".join(parts)


def _largest_sizes(differences: list[Difference]) -> str:
    """The sizes of the largest of several pairs' differences, with the pair where there are
    more than one (one line, whatever the number of sides)."""
    top = max(differences, key=lambda d: (d.loss_rel, d.worst_rel))
    pair = f"{top.sides[0]} vs {top.sides[1]}: " if len(differences) > 1 else ""
    return pair + _sizes(top, hint=False)


def _json_number(x: float) -> float | str:
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


__all__ = [
    "CONVENTION",
    "DIFFERENT",
    "SAME",
    "SAME_BITS",
    "UNKNOWN",
    "Difference",
    "Divergence",
    "KinkNote",
    "PortVerdict",
    "port_verdict",
    "relative",
    "same_value",
    "unknown",
]
