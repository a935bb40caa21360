"""ridge_step.py with one bug planted (marked PLANTED): the all-reduce of a temporary.

    gradcmp run --data data/xy.csv --loss examples/distributed_step/ridge_step_buggy.py \\
        -b torch-dist:4,jax-dist:4

``loss`` is the specification, the full-batch loss the reference differentiates exactly.
``grad_torch_dist`` is one training step as each of N torch ranks runs it on its own rows, the
gradients synchronised with ``torch.distributed.all_reduce``; ``grad_jax_dist`` is the same
step in JAX with ``shard_map``. gradcmp holds the gradient every rank ends up with against the
full-batch reference.

The bug: ``dist.all_reduce(p.grad / ctx.world_size)`` reduces the temporary ``p.grad / N``, in
place, and throws it away; ``p.grad`` keeps the rank's own, unreduced gradient.
"""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}
LAMBDA = 0.1  # the ridge penalty's weight


def loss(params, X, y, xp):
    """L = mean((theta0 + X·theta1 − y)²) / 2 + LAMBDA/2 · |theta1|²"""
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2 + LAMBDA / 2 * xp.sum(params["theta1"] ** 2)


def grad_torch_dist(params, X, y, ctx):
    import torch.distributed as dist

    # The rank's mean loss on its own rows. The ranks hold 2, 2, 1 and 1 of the 6 rows, so
    # the mean is scaled by this rank's share of the rows times N: averaging plain means
    # would count a row on a 1-row rank twice. The penalty is on every rank, and the average
    # over the N ranks below counts it once.
    r = params["theta0"] + X @ params["theta1"] - y
    scale = len(X) * ctx.world_size / ctx.rows
    rank_loss = (r * r).mean() / 2 * scale + LAMBDA / 2 * (params["theta1"] ** 2).sum()
    rank_loss.backward()
    for p in params.values():  # what DDP's reducer does: sum, then average over the ranks
        dist.all_reduce(p.grad / ctx.world_size, group=ctx.group)  # PLANTED: reduces a copy
    full_loss = rank_loss.detach().clone()
    dist.all_reduce(full_loss, group=ctx.group)
    full_loss /= ctx.world_size
    return full_loss, {name: p.grad for name, p in params.items()}


def grad_jax_dist(params, X, y, ctx):
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    def device_share(p, X, y, w):
        # This device's part of the full-batch data term: w is 0 on the padding rows JAX
        # needs where the rows do not split evenly, 1 on real ones.
        r = p["theta0"] + X @ p["theta1"] - y
        return jnp.sum(w * r * r) / 2 / ctx.rows

    def per_device(p, X, y, w):
        # Differentiate a device-varying copy, so that each device's gradient is its own
        # rows' only and the psum below is the one reduction.
        p = jax.tree.map(lambda a: jax.lax.pcast(a, ctx.axis, to="varying"), p)
        value, grads = jax.value_and_grad(device_share)(p, X, y, w)
        return jax.lax.psum(value, ctx.axis), jax.tree.map(
            lambda g: jax.lax.psum(g, ctx.axis), grads
        )

    def penalty(p):
        return LAMBDA / 2 * jnp.sum(p["theta1"] ** 2)

    rows = P(ctx.axis)
    data_term = jax.shard_map(
        per_device, mesh=ctx.mesh, in_specs=(P(), rows, rows, rows), out_specs=(P(), P())
    )

    @jax.jit
    def train_step(p, X, y, w):
        value, grads = data_term(p, X, y, w)
        pen_value, pen_grads = jax.value_and_grad(penalty)(p)
        return value + pen_value, jax.tree.map(jnp.add, grads, pen_grads)

    return train_step(params, X, y, ctx.weights)
