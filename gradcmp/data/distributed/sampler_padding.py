"""Plants DistributedSampler's padding: rows repeated to fill 4 ranks, averaged as real.

With drop_last=False the sampler pads the 6 rows to 8, a multiple of the 4 ranks, by repeating
the first rows (0 and 1); each rank averages its 2 rows and the ranks average."""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_torch_dist(params, X, y, ctx):
    import torch
    import torch.distributed as dist
    from torch.utils.data import DistributedSampler

    # Every rank holds the whole dataset (here gathered from the ranks' rows), and the sampler
    # picks this rank's rows from it, as a DataLoader(sampler=DistributedSampler(...)) would.
    parts = [None] * ctx.world_size
    dist.all_gather_object(parts, (X, y), group=ctx.group)
    X_all, y_all = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    sampler = DistributedSampler(
        range(ctx.rows), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=False
    )
    index = torch.tensor(list(sampler))
    r = params["theta0"] + X_all[index] @ params["theta1"] - y_all[index]
    grads = torch.autograd.grad((r * r).mean() / 2, list(params.values()))
    out = {}
    for name, g in zip(params, grads):
        dist.all_reduce(g, group=ctx.group)
        out[name] = g / ctx.world_size
    return out
