"""Plants a mean of per-rank means over uneven shards (6 rows over 4 ranks: 2, 2, 1, 1).

Each rank averages its own rows and the ranks' gradients are averaged: right only when every
rank holds as many rows, here a row on a 1-row rank counts twice."""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_torch_dist(params, X, y, ctx):
    import torch.distributed as dist

    r = params["theta0"] + X @ params["theta1"] - y
    local = (r * r).mean() / 2
    local.backward()
    out = {}
    for name, p in params.items():
        dist.all_reduce(p.grad, group=ctx.group)
        out[name] = p.grad / ctx.world_size
    return out
