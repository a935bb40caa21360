"""JAX over N host devices in one fresh process (its XLA_FLAGS set before JAX was imported):
``jit`` with a NamedSharding (``jax-sharded``), ``shard_map`` with the reduction written out
(``jax-shardmap``), or the loss file's own ``grad_jax_dist``.

Rows go to the devices in the same contiguous blocks as torch's ranks (shards.py). JAX shards an
axis only evenly; where the rows do not divide, every device's block is padded to the longest
with rows of weight 0 (row 0 repeated), and the loss is taken as a weighted sum of per-row
losses (``jax.vmap`` over single rows) — which equals the loss only for a mean or a sum over
rows, checked first; otherwise the backend is skipped, saying why. No row is dropped.
"""

from __future__ import annotations

import time

import numpy as np

from ..dtypes import DTYPES
from .shards import MEAN, Shards, row_reduction
from .world import SkipWorld

AXIS = "rows"


def run_rank(job: dict, rank: int, directory: str):
    import jax
    from jax.sharding import Mesh

    from .job import rebuild_problem

    world_size = job["world_size"]
    devices = jax.devices()
    if len(devices) < world_size:
        raise RuntimeError(f"JAX sees {len(devices)} devices, not {world_size}")
    mesh = Mesh(np.array(devices[:world_size]), (AXIS,))
    problem = rebuild_problem(job)
    shards = Shards.split(problem.data.rows, world_size)
    engine = job["engine"]
    if engine == "jax-dist" and "jax" not in problem.model.distributed_steps:
        raise SkipWorld("the loss file defines no grad_jax_dist(params, X, y, ctx)")
    # jit over an even sharding computes the loss as written; the others weight shards or rows.
    needs_weights = engine == "jax-shardmap" or (engine == "jax-sharded" and not shards.even)
    reduction = _reduction(problem, shards) if needs_weights else None
    per_dtype = {
        name: _step(engine, problem, DTYPES[name], shards, mesh, reduction)
        for name in job["dtypes"]
    }
    result = {
        "engine": "jax",
        "comm": f"XLA collectives, {devices[0].platform} devices",
        "reduction": reduction,
        "shards": shards.sizes,
        "dtypes": per_dtype,
    }
    return result, None


def _reduction(problem, shards: Shards) -> str:

    from ..backends._jax import jax_inputs

    with jax_inputs(problem, DTYPES["float64"]) as (params, X, y, loss_fn, side):
        loss_of = value_and_gradient(params, X, y, loss_fn)
        reduction = row_reduction(loss_of, shards.rows, len(shards.bounds))
    if reduction is None:
        raise SkipWorld(
            f"{side or 'the loss'} is neither a mean nor a sum over rows (a batch statistic? or "
            "a sum plus a term without rows, which N devices count N times), so it cannot be "
            "split over devices"
        )
    return reduction


def value_and_gradient(params: dict, X, y, loss_fn):
    """loss_of(start, stop): (loss, gradient elements …) on those rows, numpy (call it inside
    the dtype's x64 scope)."""
    import jax

    def loss_of(start: int, stop: int):
        value, grads = jax.value_and_grad(loss_fn)(params, X[start:stop], y[start:stop])
        flat = [np.asarray(g, dtype=np.float64).reshape(-1) for g in jax.tree.leaves(grads)]
        return np.concatenate([[float(value)], *flat])

    return loss_of


def _step(engine: str, problem, dtype, shards: Shards, mesh, reduction) -> dict:
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from ..backends._jax import jax_inputs

    with jax_inputs(problem, dtype) as (params, X, y, loss_fn, side):
        index, real = shards.padded_index()
        by_rows, everywhere = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
        Xs = jax.device_put(X[index] if not shards.even else X, by_rows)
        ys = jax.device_put(y[index] if not shards.even else y, by_rows)
        row_weight = 1.0 / shards.rows if reduction == MEAN else 1.0
        weights = jnp.where(jnp.asarray(real), row_weight, 0.0).astype(X.dtype)
        weights = jax.device_put(weights, by_rows)
        params = jax.device_put(params, everywhere)
        notes = []
        if not shards.even:
            notes.append(
                f"{shards.rows} rows do not split evenly over {len(shards.bounds)} devices: "
                f"each block padded to {shards.longest} rows with rows of weight 0"
            )
        if engine == "jax-dist":
            call = _user_step(problem, mesh, shards, weights, dtype)
            side = "grad_jax_dist"
        elif engine == "jax-shardmap":
            call = jax.jit(_shardmap(loss_fn, mesh, shards, reduction))
        elif shards.even:
            call = jax.jit(jax.value_and_grad(loss_fn))
        else:
            call = jax.jit(jax.value_and_grad(_weighted_rows(loss_fn)))
        plain = engine == "jax-dist" or (engine == "jax-sharded" and shards.even)
        args = (params, Xs, ys) if plain else (params, Xs, ys, weights)
        began = time.perf_counter()
        answer = jax.block_until_ready(call(*args))  # compiles, then runs
        compile_seconds = time.perf_counter() - began
        began = time.perf_counter()
        answer = jax.block_until_ready(call(*args))
        seconds = time.perf_counter() - began
        loss, grads = answer if isinstance(answer, tuple) else (None, answer)
        ranks = _per_device(grads, len(shards.bounds))
        loss = None if loss is None else float(np.asarray(loss))
    return {
        "loss": loss,
        "ranks": ranks,
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "side": side,
        "notes": notes,
    }


def _weighted_rows(loss_fn):
    """loss(params, X, y, weights) = Σ_i weights_i · loss(params, row i): a padding row has
    weight 0 and adds exactly 0 (its loss is finite: it repeats row 0)."""
    import jax
    import jax.numpy as jnp

    def weighted(params, X, y, weights):
        per_row = jax.vmap(lambda x, t: loss_fn(params, x[None], t[None]))(X, y)
        return jnp.sum(weights * per_row)

    return weighted


def _shardmap(loss_fn, mesh, shards: Shards, reduction: str):
    """Each device's value and gradient on its block, then ``psum``: the reduction written out.

    The parameters enter replicated; inside they are cast to device-varying (``pcast``) before
    differentiating, so each device's gradient is its own block's and the one ``psum`` is the
    only reduction. (Differentiating the replicated parameters directly makes JAX insert a psum
    in the backward pass already: a second, written-out psum then counts every shard N times —
    the extra-psum bug.)"""
    import jax
    from jax.sharding import PartitionSpec as P

    world_size = len(shards.bounds)

    def local(params, X, y, weights):
        mine = jax.tree.map(lambda a: jax.lax.pcast(a, AXIS, to="varying"), params)
        if shards.even:
            value, grads = jax.value_and_grad(loss_fn)(mine, X, y)
            scale = 1.0 / world_size if reduction == MEAN else 1.0
            value, grads = value * scale, jax.tree.map(lambda g: g * scale, grads)
        else:
            value, grads = jax.value_and_grad(_weighted_rows(loss_fn))(mine, X, y, weights)
        return jax.lax.psum(value, AXIS), jax.tree.map(lambda g: jax.lax.psum(g, AXIS), grads)

    return jax.shard_map(
        local, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)), out_specs=(P(), P())
    )


def _user_step(problem, mesh, shards: Shards, weights, dtype):
    """The loss file's ``grad_jax_dist(params, X, y, ctx)``, called with the sharded rows."""
    from .context import MeshContext

    ctx = MeshContext(
        mesh=mesh,
        axis=AXIS,
        world_size=len(shards.bounds),
        rows=shards.rows,
        shards=shards.bounds,
        weights=weights,
        dtype=dtype.name,
    )
    step = problem.model.distributed_steps["jax"]
    return lambda params, X, y: step(params, X, y, ctx)


def _per_device(grads: dict, world_size: int) -> list[dict]:
    """Every device's copy of each gradient (a replicated array holds one per device); an
    array on fewer devices, or a numpy array, counts as every device's."""
    ranks: list[dict] = [{} for _ in range(world_size)]
    for name, g in grads.items():
        shards = getattr(g, "addressable_shards", None)
        copies = [np.asarray(s.data, dtype=np.float64) for s in shards] if shards else []
        full = [c for c in copies if c.shape == np.shape(g)]
        if len(full) != world_size:
            full = [np.asarray(g, dtype=np.float64)] * world_size
        for rank in range(world_size):
            ranks[rank][name] = full[rank]
    return ranks


def launched_step(problem, dtype, row_weight, longest: int) -> dict:
    """One process of a launched JAX world (launched.py): its own rows, padded to the longest
    process's with rows of weight 0, made one global array over every process's devices; the
    jitted gradient of Σ weights·per-row loss comes back replicated on every process."""
    import jax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from ..backends._jax import jax_inputs

    mesh = Mesh(np.array(jax.devices()), (AXIS,))
    by_rows, everywhere = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
    with jax_inputs(problem, dtype) as (params, X, y, loss_fn, side):
        mine = X.shape[0]
        index = np.concatenate([np.arange(mine), np.zeros(longest - mine, dtype=np.int64)])
        real = np.arange(longest) < mine
        weights = np.where(real, float(row_weight), 0.0).astype(X.dtype)

        def global_array(local):
            return jax.make_array_from_process_local_data(by_rows, np.asarray(local))

        args = (params, *(global_array(a) for a in (X[index], y[index], weights)))
        call = jax.jit(jax.value_and_grad(_weighted_rows(loss_fn)), out_shardings=everywhere)
        began = time.perf_counter()
        jax.block_until_ready(call(*args))
        compile_seconds = time.perf_counter() - began
        began = time.perf_counter()
        loss, grads = jax.block_until_ready(call(*args))
        seconds = time.perf_counter() - began
        mine_of = {
            k: np.asarray(g.addressable_shards[0].data, dtype=np.float64) for k, g in grads.items()
        }
        loss = float(np.asarray(loss.addressable_shards[0].data))
    return {
        "loss": loss,
        "ranks": [mine_of],
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "side": side,
    }
