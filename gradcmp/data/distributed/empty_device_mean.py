"""Plants an empty device's mean: 0/0 = NaN on the devices that hold no rows.

6 rows over 8 devices leave two with padding rows only; each device's mean of its real rows,
Σ w·loss / Σ w, is 0/0 there, NaN even weighted by its share of the rows, 0."""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_jax_dist(params, X, y, ctx):
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    def local(p, X, y, w):
        p = jax.tree.map(lambda a: jax.lax.pcast(a, ctx.axis, to="varying"), p)

        def my_mean(p):
            r = p["theta0"] + X @ p["theta1"] - y
            return jnp.sum(w * r * r) / jnp.sum(w) / 2  # the mean of my real rows

        share = jnp.sum(w) / ctx.rows  # my rows' share of all rows: no mean of means
        g = jax.grad(my_mean)(p)
        return jax.tree.map(lambda a: jax.lax.psum(a * share, ctx.axis), g)

    rows = P(ctx.axis)
    step = jax.shard_map(local, mesh=ctx.mesh, in_specs=(P(), rows, rows, rows), out_specs=P())
    return jax.jit(step)(params, X, y, ctx.weights)
