"""What the loss file's own distributed step receives besides its rows (docs/design.md, "Loss
files"): ``grad_torch_dist(params, X, y, ctx)`` runs in every rank with that rank's rows;
``grad_jax_dist(params, X, y, ctx)`` runs once with the rows sharded over ``ctx.mesh``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RankContext:
    """A torch rank's place in the world.

    ``rows`` counts all ranks' rows (divide a sum by it for the full-batch mean); ``shard`` is
    this rank's [start, stop) of them; ``group`` is the process group to reduce over."""

    rank: int
    world_size: int
    rows: int
    shard: tuple[int, int]
    group: Any
    dtype: str


@dataclass(frozen=True)
class MeshContext:
    """A JAX world: ``mesh`` has one axis, ``axis`` (``"rows"``), of ``world_size`` devices.

    X and y are sharded over it in contiguous blocks, each padded to the longest one where the
    rows do not divide evenly: ``weights`` (sharded alike) is 1 for a real row and 0 for a
    padding row, which repeats row 0 — a full-batch mean is Σ weights·loss_row / ``rows``.
    ``shards`` is every device's [start, stop) of the real rows."""

    mesh: Any
    axis: str
    world_size: int
    rows: int
    shards: tuple[tuple[int, int], ...]
    weights: Any
    dtype: str
