"""Clean: each rank's share of the full-batch mean, all-reduced (torch) or psum'd (JAX).

The torch step divides its rows' sum by all rows, then sums over the ranks; the JAX step
differentiates a device-varying copy of the parameters (pcast), weights padding rows 0, and
psums once."""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_torch_dist(params, X, y, ctx):
    import torch
    import torch.distributed as dist

    r = params["theta0"] + X @ params["theta1"] - y
    share = (r * r).sum() / 2 / ctx.rows  # my rows' part of the full-batch mean
    grads = torch.autograd.grad(share, list(params.values()))
    out = {}
    for name, g in zip(params, grads):
        g = g.clone()
        dist.all_reduce(g, group=ctx.group)
        out[name] = g
    return out


def grad_jax_dist(params, X, y, ctx):
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    def local(p, X, y, w):
        p = jax.tree.map(lambda a: jax.lax.pcast(a, ctx.axis, to="varying"), p)

        def share(p):
            r = p["theta0"] + X @ p["theta1"] - y
            return jnp.sum(w * r * r) / 2 / ctx.rows  # padding rows have w = 0

        g = jax.grad(share)(p)
        return jax.tree.map(lambda a: jax.lax.psum(a, ctx.axis), g)

    rows = P(ctx.axis)
    step = jax.shard_map(local, mesh=ctx.mesh, in_specs=(P(), rows, rows, rows), out_specs=P())
    return jax.jit(step)(params, X, y, ctx.weights)
