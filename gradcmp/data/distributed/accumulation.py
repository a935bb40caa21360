"""Plants gradient accumulation over k = 3 micro-batches without ÷k.

Each rank's rows go in 3 micro-batches; each micro-batch's mean loss is backward()ed into
.grad, and the accumulated gradient is never divided by 3."""

PARAMS = {"theta0": 0.5, "theta1": [-1.25]}
ACCUMULATION_STEPS = 3


def loss(params, X, y, xp):
    r = params["theta0"] + X @ params["theta1"] - y
    return xp.mean(r * r) / 2


def grad_torch_dist(params, X, y, ctx):
    import torch
    import torch.distributed as dist

    for Xm, ym in zip(
        torch.tensor_split(X, ACCUMULATION_STEPS), torch.tensor_split(y, ACCUMULATION_STEPS)
    ):
        r = params["theta0"] + Xm @ params["theta1"] - ym
        micro = (r * r).mean() / 2  # should be ÷ ACCUMULATION_STEPS
        micro.backward()  # accumulates into p.grad
    out = {}
    for name, p in params.items():
        dist.all_reduce(p.grad, group=ctx.group)
        out[name] = p.grad / ctx.world_size
    return out
