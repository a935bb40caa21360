"""Ranks held against each other.

After a reduction every rank holds the same gradient, bit for bit: an all-reduce (gloo's ring,
XLA's) hands every rank the same sums. A rank whose gradient differs is its own finding, named
by rank and parameter ("rank 3: `b_out` differs from ranks 0–2: a parameter missed the
all-reduce"), whatever rank 0's gradient says against the reference.
"""

from __future__ import annotations

from collections.abc import Callable

from ..judging.agreement import DISAGREE, verdict_of


def rank_status(
    world: dict,
    rank0: dict[str, float],
    others: dict[int, dict[str, float]],
    judge: Callable[[dict[str, float]], dict],
) -> tuple[dict, dict]:
    """(the world with ``ranks`` — each rank's status — and ``finding`` where ranks differ,
    the errors of the worst differing rank against the reference, or {})."""
    size = world["world_size"]
    gradient = {0: rank0, **others}
    groups: list[list[int]] = []  # ranks with the same gradient, bit for bit
    for rank in range(size):
        mine = gradient.get(rank, rank0)
        for group in groups:
            if same_values(gradient.get(group[0], rank0), mine):
                group.append(rank)
                break
        else:
            groups.append([rank])
    statuses, errors_of = [], {}
    rank0_verdict = verdict_of(judge(rank0))
    for rank in range(size):
        status = {"rank": rank, "status": "ok", "verdict": rank0_verdict}
        if rank in others:
            errors_of[rank] = judge(others[rank])
            status = {
                "rank": rank,
                "status": "differs",  # from rank 0, in these parameters
                "parameters": _parameters(rank0, others[rank]),
                "verdict": verdict_of(errors_of[rank]),
            }
        statuses.append(status)
    world = {**world, "ranks": statuses}
    if len(groups) == 1:
        return world, {}
    world["finding"] = _finding(groups, gradient, rank0, size)
    worst = next((r for r in errors_of if verdict_of(errors_of[r]) == DISAGREE), None)
    if worst is None:
        worst = min(errors_of)
    return world, errors_of[worst]


def _finding(groups: list[list[int]], gradient: dict, rank0: dict, size: int) -> str:
    # The consensus: the largest group, the one with rank 0 among equals.
    consensus = max(groups, key=lambda g: (len(g), 0 in g))
    odd = [r for g in groups if g is not consensus for r in g]
    base = gradient.get(consensus[0], rank0)
    differing = sorted({p for r in odd for p in _parameters(base, gradient.get(r, rank0))})
    every_parameter = {_parameter(k) for k in rank0}
    verb = "differs" if len(differing) == 1 else "differ"
    names = ", ".join(f"`{p}`" for p in differing) + f" {verb}"
    if len(differing) == len(every_parameter):
        why = "the ranks' gradients were not reduced alike"
    else:  # some parameters reduced alike, these not
        why = f"{'a parameter' if len(differing) == 1 else 'parameters'} missed the all-reduce"
    if len(groups) == size:
        return f"{names} on every one of the {size} ranks: {why}"
    return f"{ranks_text(odd)}: {names} from {ranks_text(consensus, plural=True)}: {why}"


def same_values(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal element by element, a NaN equal to a NaN (each rank makes its own)."""
    return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)


def _same(x: float, y: float) -> bool:
    return x == y or (x != x and y != y)


def _parameters(a: dict[str, float], b: dict[str, float]) -> list[str]:
    """The parameters (not elements) whose gradients differ between two ranks."""
    return sorted({_parameter(k) for k in a if not _same(a[k], b.get(k, float("nan")))})


def _parameter(element: str) -> str:
    return element.split("[", 1)[0]


def ranks_text(ranks: list[int], plural: bool = False) -> str:
    """``rank 3``, ``ranks 0–2``, ``ranks 0, 2, 5``."""
    ranks = sorted(ranks)
    word = "ranks" if plural or len(ranks) > 1 else "rank"
    if len(ranks) > 2 and ranks == list(range(ranks[0], ranks[-1] + 1)):
        return f"{word} {ranks[0]}–{ranks[-1]}"
    return f"{word} {', '.join(map(str, ranks))}"
