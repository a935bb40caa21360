"""Where two sides of a port part: matching their shadow graphs step by step.

Two sides that compute the same function compute many of the same intermediate tensors, in
whatever order and under whatever op names their frameworks use: the matrix product, the
mean, the normalised activations, most of the backward pass. Their shadow evaluations give
each of those the same exact value, so a step of one side is *matched* when the other side
has a step of the same value: the same shape (or equal after squeezing size-1 axes, or the
transpose of a 2-D tensor) and equal elementwise to within ``ULPS`` float64 ulps of
max(|value|, magnitude). Steps keep float64 images of 200-bit values: two values that agree to
~190 bits round to the same float64 or to neighbours, while a semantic difference (another
eps, another activation) moves them by far more than a few ulps. The magnitude (the sum of the
terms' sizes) is in the tolerance because the two 200-bit evaluations may differ by 2**-190 of
it, which is more than an ulp of the value where terms cancel. Inputs (X, y, parameters) match
their same-named counterpart.

From the first output that differs (the loss, or else the worst-differing gradient) each side
is walked back through *unmatched* steps only. A step whose value the other side also has ends
the walk: whatever differs further back was undone before it (JAX's ``reduce_sum`` then
``div`` against torch's ``mean``: the sum has no counterpart, but the quotient matches, so the
sum is never blamed). Among the unmatched steps reached, those whose tensor inputs all match
are where the sides first part; the earliest of them in evaluation order is reported: the root
cause, not a later step that only inherits the difference.

Matching is fast for hundreds of 10⁵-element tensors: steps are bucketed by shape and sorted by
their largest |value| (which two matching tensors share to within the tolerance), and a
weighted sum with fixed pseudo-random weights rejects most remaining candidates before any
elementwise comparison.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from .match_values import RESOLUTION, ULPS, _close, _entries, _Entry, _Index
from .shadow import INPUT, ShadowGraph, Step, relative_gap, source_line

# A root's own gap stands unless a later step of its statement parts this many times less.
STATEMENT_FACTOR = 10.0


@dataclass(frozen=True)
class Divergence:
    """Where one side first parts from the other (the op, its line, how far it parts)."""

    side: str
    file: str
    line: int
    op: str
    code: str
    rel: float  # max|a − b| / max(|a|, |b|) of its statement and the closest counterpart
    phase: str  # forward | backward


def _leaf_like(step: Step) -> bool:
    """Inputs, constants (no tensor inputs) and non-float steps: never blamed themselves; a
    differing constant (another eps) is blamed on the step that uses it, whose line shows it."""
    return step.phase == INPUT or not step.inputs or step.value is None


class _Side:
    """One side's steps, their entries and which of them the other side also has."""

    def __init__(self, graph: ShadowGraph):
        self.graph = graph
        self.steps = {s.index: s for s in graph.steps}
        self.entries = {s.index: _entries(s) for s in graph.steps}
        self.index = _Index([es[0] for es in self.entries.values() if es])
        self.inputs = {s.name for s in graph.steps if s.phase == INPUT and s.name}
        self.matched: set[int] = set()

    def match_against(self, other: _Side) -> None:
        for step in self.graph.steps:
            if step.phase == INPUT and step.name in other.inputs:
                self.matched.add(step.index)
                continue
            if any(other.index.find(e) for e in self.entries[step.index]):
                self.matched.add(step.index)

    def fine(self, index: int) -> bool:
        """A step the walk does not enter: matched, leaf-like, or not in the graph."""
        step = self.steps.get(index)
        return step is None or index in self.matched or _leaf_like(step)

    def blamable(self, index: int) -> bool:
        """A float step that is not leaf-like: one a walk may reach."""
        return bool(self.entries.get(index)) and not _leaf_like(self.steps[index])

    def walk(self, start: int) -> tuple[list[int], set[int]]:
        """(the candidate roots, earliest first, and the unmatched steps reached) walking
        back from ``start``: the reached steps whose inputs all match."""
        if start in self.matched:  # the sides part below float64 resolution here
            return [start], {start}
        reached, stack = {start}, [start]
        while stack:
            for i in self.steps[stack.pop()].inputs:
                if i not in reached and not self.fine(i):
                    reached.add(i)
                    stack.append(i)
        roots = sorted(i for i in reached if all(self.fine(j) for j in self.steps[i].inputs))
        return roots or [min(reached)], reached

    def kind(self, index: int) -> tuple[str, tuple[int, ...]]:
        """A root's operation and shape, in words both frameworks share."""
        step = self.steps[index]
        name = step.op.removeprefix("aten.").split(".")[0].split("[")[0]
        entries = self.entries.get(index)
        return _KINDS.get(name, name), entries[0].shape if entries else ()

    def descendants(self, root: int, within: set[int]) -> list[int]:
        """The steps of ``within`` fed (directly or not) by ``root``, root first, in
        evaluation order."""
        consumers: dict[int, list[int]] = defaultdict(list)
        for i in within:
            for j in self.steps[i].inputs:
                consumers[j].append(i)
        seen, stack = {root}, [root]
        while stack:
            for k in consumers[stack.pop()]:
                if k not in seen:
                    seen.add(k)
                    stack.append(k)
        return sorted(seen, key=lambda i: (i != root, i))


def _closest(variants: list[_Entry], pool: dict[tuple[int, ...], list[_Entry]]) -> float:
    """The smallest relative gap, max|x − y| / max(|x|, |y|) (the measure of the port's
    differences, not scaled by magnitudes), between any orientation of a step and a
    same-shaped step of ``pool``; inf where none has the shape. Candidates are tried in the
    order of a lower bound, |‖x‖∞ − ‖y‖∞| / max(‖x‖∞, ‖y‖∞), and the search stops once that
    bound reaches the best gap found."""
    best = math.inf
    for x in variants:
        candidates = []
        for y in pool.get(x.shape, ()):
            top = max(x.norm, y.norm)
            bound = abs(x.norm - y.norm) / top if top > 0 else 0.0
            candidates.append((bound, y.index, y))
        for bound, _, y in sorted(candidates, key=lambda c: c[:2]):
            if bound >= best:
                break
            best = min(best, relative_gap(x.values, y.values))
    return best


def _pool(side: _Side, indices) -> dict[tuple[int, ...], list[_Entry]]:
    pool: dict[tuple[int, ...], list[_Entry]] = defaultdict(list)
    for i in indices:
        if side.entries.get(i):
            e = side.entries[i][0]
            pool[e.shape].append(e)
    return pool


def _parting(
    side: _Side, root: int, reached: set[int], other: _Side, theirs: set[int], fallback: float
) -> float:
    """How far the sides part at ``root``.

    The root is held against the closest same-shaped step on the other side's unmatched path
    (else any unmatched step there). The root may be only a piece of a statement the other
    side computes another way (z³ of JAX's tanh-form GELU against torch's one gelu op), whose
    closest counterpart is nothing like it: so the steps it feeds on its own source line are
    held against theirs too, and where the root's own gap is more than STATEMENT_FACTOR times
    the smallest of those, the smallest counts (the activation against the activation). Where
    no step of the statement has a counterpart of its shape, the first step downstream of the
    root that has one gives the gap (the value the other side has at the consumer); where none
    does, the gap of the outputs the walk started from."""
    order = side.descendants(root, reached)
    here = side.steps[root]
    place = (here.file, here.line)
    statement = [
        i
        for i in order
        if i == root or (here.line and (side.steps[i].file, side.steps[i].line) == place)
    ]
    unmatched = [i for i in other.steps if i not in other.matched and other.blamable(i)]
    for pool in (_pool(other, theirs), _pool(other, unmatched)):
        gaps = [_closest(side.entries[i], pool) for i in statement]  # the root's first
        if any(math.isfinite(g) for g in gaps):
            return gaps[0] if gaps[0] <= STATEMENT_FACTOR * min(gaps) else min(gaps)
        for i in order:
            gap = _closest(side.entries[i], pool)
            if math.isfinite(gap):
                return gap
    return fallback


# Ops that only move or relabel values: equal to their input by design, never an idle op.
_MOVES = tuple(
    "alias view reshape expand broadcast clone copy detach contiguous squeeze identity lift "
    "convert_element_type stop_gradient pjit jvp_call reduce_precision slice transpose "
    "permute t.default".split()
)


def _same(xs: list[_Entry], ys: list[_Entry] | None) -> bool:
    """Whether two steps' values are equal (in some orientation) within the tolerance."""
    return bool(ys) and any(x.shape == ys[0].shape and _close(x, ys[0]) for x in xs)


def _shaped_alike(xs: list[_Entry], ys: list[_Entry] | None) -> bool:
    return bool(ys) and any(x.shape == ys[0].shape for x in xs)


def _idle_op(side: _Side, root: int, other: _Side, their_root: int) -> int:
    """The root, or the op feeding it that did nothing here where the other side's op did.

    A math op whose result equals its own input (torch.nn.LeakyReLU(True): slope 1.0, not
    "inplace") has a value the other side also holds (the input's), so it matches and the
    walk passes it by; the sides then seem to part at its consumer (the next matrix product)
    while the other side parts at the activation itself. So where the two roots cannot be
    the same quantity (no common shape) and an op feeding this root left its input unchanged,
    has the other root's shape and that input is one the other root consumes, the idle op is
    where this side parts. Roots of one shape are counterparts (var + 1e-5 against
    var + 1e-6) and stand, whatever did nothing before them (jnp.var's select_n)."""
    mine, their = side.entries.get(root), other.entries.get(their_root)
    if not mine or not their or _shaped_alike(mine, their):
        return root
    theirs = [other.entries.get(j) for j in other.steps[their_root].inputs]
    for i in side.steps[root].inputs:
        step = side.steps.get(i)
        if step is None or _leaf_like(step) or any(m in step.op.lower() for m in _MOVES):
            continue
        if not _shaped_alike(side.entries[i], their):
            continue
        for j in step.inputs:
            if j in side.steps and _same(side.entries[i], side.entries.get(j)):
                if any(_same(side.entries[j], t) for t in theirs if t):
                    return i
    return root


def output_step(graph: ShadowGraph, start: str) -> int:
    """The step of output ``start``: "loss", a parameter, or an element ("W1[3,2]") of one,
    whose gradient tensor is the step."""
    name = start.split("[", 1)[0]
    if name not in graph.outputs:
        raise ValueError(f"{graph.side}'s graph has no output {name!r}")
    return graph.outputs[name]


def locate(a: ShadowGraph, b: ShadowGraph, start: str = "loss") -> tuple[Divergence, Divergence]:
    """Where ``a`` and ``b`` first part on the way to output ``start`` (the loss, or a
    gradient element or parameter name): one Divergence per side."""
    sa, sb = _Side(a), _Side(b)
    ia, ib = output_step(a, start), output_step(b, start)
    sa.match_against(sb)
    sb.match_against(sa)
    ea, eb = sa.entries.get(ia), sb.entries.get(ib)
    outputs_gap = relative_gap(ea[0].values, eb[0].values) if ea and eb else math.inf
    (roots_a, reached_a), (roots_b, reached_b) = sa.walk(ia), sb.walk(ib)
    ra, rb = _paired(sa, roots_a, sb, roots_b), _paired(sb, roots_b, sa, roots_a)
    ra, rb = _idle_op(sa, ra, sb, rb), _idle_op(sb, rb, sa, ra)
    reached_a, reached_b = reached_a | {ra}, reached_b | {rb}
    rel_a = _parting(sa, ra, reached_a, sb, reached_b, outputs_gap)
    rel_b = _parting(sb, rb, reached_b, sa, reached_a, outputs_gap)
    return _divergence(a, sa.steps[ra], rel_a), _divergence(b, sb.steps[rb], rel_b)


# Names of the same elementwise operation in the two frameworks.
_KINDS = {"add_any": "add", "subtract": "sub", "multiply": "mul", "true_divide": "div"}


def _paired(side: _Side, roots: list[int], other: _Side, theirs: list[int]) -> int:
    """The earliest root that the other side also has a root of (the same operation on a
    tensor of the same shape: the two versions of the changed statement, an eps added to a
    variance on both sides), else the earliest root. A port that also rearranges the algebra
    has side-only roots as early as the change (X·gamma for (X − mu)·gamma); they have no
    such twin."""
    kinds = {other.kind(i) for i in theirs}
    return next((i for i in roots if side.kind(i) in kinds), roots[0])


def _divergence(graph: ShadowGraph, step: Step, rel: float) -> Divergence:
    code = step.code or source_line(step.file, step.line)
    return Divergence(graph.side, step.file, step.line, step.op, code, rel, step.phase)


__all__ = ["RESOLUTION", "ULPS", "Divergence", "locate", "output_step"]
