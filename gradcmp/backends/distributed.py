"""Backends with a world size, ``ENGINE:N``: the gradient computed by N ranks and reduced by a
distributed engine, collected from every rank (gradcmp/distributed/ runs the world).

The result is held against the full-batch reference. The bound is the rule's τ plus the
roundings the reduction adds (docs/design.md, "Distributed backends"): each rank's loss scaled
by its weight (the weight's own rounding and the product: 2), the sum of the N ranks' partial
gradients (N − 1 additions, in whatever order the all-reduce takes), and the division by N
(DDP's average, FSDP2's pre- and post-division: 2) — N + 3 roundings of at most the sum of
the partials' magnitudes, which the reference's M bounds.
"""

from __future__ import annotations

from ..dtypes import DType
from ..problem import Problem
from .base import Output, SkipBackend

# engine → (framework, what it runs)
ENGINES = {
    "torch-ddp": ("torch", "torch.distributed DistributedDataParallel, gloo, N ranks"),
    "torch-fsdp": ("torch", "torch.distributed FSDP2 (fully_shard), gloo, N ranks"),
    "torch-dist": ("torch", "the loss file's grad_torch_dist on each of N ranks, gloo"),
    "jax-sharded": ("jax", "jax.jit with NamedSharding over a 1-D mesh of N devices"),
    "jax-shardmap": ("jax", "jax.shard_map, each device's gradient psum'd, N devices"),
    "jax-dist": ("jax", "the loss file's grad_jax_dist over a mesh of N devices"),
}
# ``torch-ddp`` without ``:N``: two ranks, the smallest world with a reduction in it (and as
# many as CI's two cores run side by side).
DEFAULT_WORLD_SIZE = 2
MAX_WORLD_SIZE = 8


class WorldFailed(Exception):
    """The world failed as a whole (a rank crashed, --timeout): one line, gradcmp's words."""


class Distributed:
    dtypes = ("float64", "float32")  # gloo reduces neither float16 nor bfloat16 on CPU

    def __init__(self, engine: str, world_size: int):
        self.engine, self.world_size = engine, world_size
        self.framework, what = ENGINES[engine]
        self.name = f"{engine}:{world_size}"
        self.description = what.replace("N ", f"{world_size} ")
        self.requires = ("torch",) if self.framework == "torch" else ("jax", "jaxlib")

    def setup(self) -> None:
        """Nothing to import here: every rank imports its framework itself."""

    def compute(self, problem: Problem, dtype: DType) -> Output:
        answer = self.compute_all(problem, [dtype], None)[dtype.name]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def compute_all(
        self, problem: Problem, dtypes: list[DType], timeout: float | None
    ) -> dict[str, Output | Exception]:
        """One world for every dtype: start-up (importing torch in each rank) is paid once."""
        return self.finish(self.start(problem, dtypes, timeout), dtypes)

    def start(self, problem: Problem, dtypes: list[DType], timeout: float | None):
        """Start the world (its ranks import their framework while gradcmp goes on); the
        World it returns is ``finish``ed, or ``end``ed."""
        from ..distributed.world import World

        job = {
            "engine": self.engine,
            "world_size": self.world_size,
            "dtypes": [d.name for d in dtypes],
            "recipe": problem.model.recipe,
            "model": problem.model.name,
            "data": problem.data,
            "params": problem.params,
            "timeout": timeout,
        }
        if self.framework == "torch":
            return World(job, self.world_size, timeout)
        # JAX: one fresh process, its N devices set before JAX is imported.
        flags = f"--xla_force_host_platform_device_count={self.world_size}"
        return World(job, 1, timeout, {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})

    def finish(self, world, dtypes: list[DType]) -> dict[str, Output | Exception]:
        outcome = world.wait()
        if outcome.failure:
            return {d.name: WorldFailed(outcome.failure) for d in dtypes}
        skipped = next((r["skip"] for r in outcome.results if "skip" in r), None)
        if skipped:
            return {d.name: SkipBackend(skipped) for d in dtypes}
        return {d.name: self._output(outcome, d.name) for d in dtypes}

    def _output(self, outcome, dtype: str) -> Output:
        first = outcome.results[0]
        per_rank = [r["dtypes"][dtype] for r in outcome.results]
        ranks = [grads for part in per_rank for grads in part["ranks"]]
        compute = max(part["seconds"] for part in per_rank)
        world = {
            "world_size": self.world_size,
            "engine": first["engine"],
            "comm": first["comm"],
            "shards": first["shards"],
            "reduction": first["reduction"],
            "startup_seconds": max(0.0, outcome.seconds - compute),
            # torch: the module and the engine's wrapping (DDP syncs the ranks), slowest rank
            "setup_seconds": max((part.get("setup_seconds") or 0.0) for part in per_rank),
        }
        notes = list(outcome.notes) + list(per_rank[0].get("notes", ()))
        return Output(
            loss=per_rank[0]["loss"],
            grads=ranks[0],
            notes=tuple(notes),
            side=per_rank[0]["side"],
            compile_seconds=per_rank[0].get("compile_seconds"),
            run_seconds=compute,
            world=world,
            rank_grads=tuple(ranks),
            extra_roundings=self.world_size + 3,
        )


def parse_distributed(name: str) -> Distributed | None:
    """``torch-ddp:4`` (or ``torch-ddp``: DEFAULT_WORLD_SIZE) → its backend; None if ``name``
    names no engine. A bad world size is a UsageError."""
    from ..errors import UsageError

    engine, colon, size = name.partition(":")
    if engine not in ENGINES:
        return None
    if not colon:
        return Distributed(engine, DEFAULT_WORLD_SIZE)
    plain = size.isascii() and size.isdigit()  # not "²", which str.isdigit() takes
    if not plain or not 1 <= int(size) <= MAX_WORLD_SIZE:
        raise UsageError(
            f"{name}: the world size must be a whole number from 1 to {MAX_WORLD_SIZE}",
            hint=f"write {engine}:4",
        )
    return Distributed(engine, int(size))
