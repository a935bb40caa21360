"""torch.distributed in one rank: DDP, FSDP2 (``fully_shard``), or the loss file's own step.

Every rank holds the whole parameter set (DDP) or its shard of it (FSDP2), runs the loss on
its contiguous rows, weighted so that the ranks' reduction is the full-batch gradient
(shards.py), and calls ``backward``; the engine reduces. DDP and FSDP2 both *average* over the
N ranks, so rank r's loss is scaled by N·w_r: Σ_r (N·w_r·∇L_r)/N = Σ_r w_r·∇L_r = ∇L. With even
shards and a mean loss N·w_r = 1 and no scaling is done: the run is what users run. A rank with
no rows still takes part in the reduction (or the others wait for it forever): it runs row 0 at
weight 0, which adds exactly 0.

The gradient each rank holds afterwards is sent back (FSDP2's shards gathered with
``full_tensor``), so ranks that disagree with each other are seen.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from ..dtypes import DTYPES
from .shards import Shards, row_reduction
from .world import PORT_FILE, SkipWorld

# How long a rank waits for rank 0's port, and torch.distributed's own collective timeout,
# when the run has no --timeout (the parent ends the world at --timeout in any case).
DEFAULT_WAIT_SECONDS = 300.0


def preload(recipe: dict) -> None:
    """What every torch rank imports, imported once before the ranks are forked (zygote.py):
    torch, torch.distributed and the engine's own modules. Nothing here starts a thread."""
    import torch  # noqa: F401
    import torch.distributed  # noqa: F401

    from ..backends import _torch  # noqa: F401
    from . import context, job  # noqa: F401

    if recipe["engine"] == "torch-fsdp":
        import torch.distributed.device_mesh  # noqa: F401
        import torch.distributed.fsdp  # noqa: F401
    elif recipe["engine"] == "torch-ddp":
        import torch.nn.parallel  # noqa: F401


def run_rank(job: dict, rank: int, directory: str):
    import torch
    import torch.distributed as dist

    from .job import rebuild_problem

    torch.set_num_threads(1)
    world_size = job["world_size"]
    wait = job.get("timeout") or DEFAULT_WAIT_SECONDS
    store = _store(rank, world_size, directory, wait)
    dist.init_process_group(
        "gloo", store=store, rank=rank, world_size=world_size, timeout=timedelta(seconds=wait)
    )
    problem = rebuild_problem(job)
    shards = Shards.split(problem.data.rows, world_size)
    engine = job["engine"]
    hook = engine == "torch-dist"
    if hook and "torch" not in problem.model.distributed_steps:
        raise SkipWorld("the loss file defines no grad_torch_dist(params, X, y, ctx)")
    reduction = None if hook else _reduction(problem, shards)
    per_dtype = {}
    for name in job["dtypes"]:
        dtype = DTYPES[name]
        if hook:
            per_dtype[name] = _user_step(problem, dtype, shards, rank)
        else:
            start, stop = shards.bounds[rank]
            weight = shards.weight(rank, reduction)
            per_dtype[name] = engine_step(engine, problem, dtype, start, stop, weight, world_size)
    result = {
        "engine": "torch.distributed",
        "comm": dist.get_backend(),
        "reduction": reduction,
        "shards": shards.sizes,
        "dtypes": per_dtype,
    }
    return result, dist.destroy_process_group


def _store(rank: int, world_size: int, directory: str, wait: float):
    """Rank 0 opens the rendezvous on 127.0.0.1 at a port the OS picks and publishes it."""
    import torch.distributed as dist

    path = os.path.join(directory, PORT_FILE)
    timeout = timedelta(seconds=wait)
    if rank == 0:
        store = dist.TCPStore(
            "127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False, timeout=timeout
        )
        with open(path + ".tmp", "w") as f:
            f.write(str(store.port))
        os.replace(path + ".tmp", path)
        return store
    deadline = time.monotonic() + wait
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank 0 opened no rendezvous within {wait:g} s")
        time.sleep(0.01)
    with open(path) as f:
        port = int(f.read())
    return dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=timeout)


def _reduction(problem, shards: Shards) -> str:
    """MEAN or SUM (shards.py), checked with the torch side in float64; SkipWorld if neither."""

    from ..backends._torch import torch_inputs, torch_loss

    params, X, y = torch_inputs(problem, DTYPES["float64"])
    loss_fn, side = torch_loss(problem)
    loss_of = value_and_gradient(params, X, y, loss_fn)
    reduction = row_reduction(loss_of, shards.rows, len(shards.bounds))
    if reduction is None:
        what = side or "the loss"
        raise SkipWorld(
            f"{what} is neither a mean nor a sum over rows, so its shards do not add up to it "
            "(a batch statistic? or a sum plus a term without rows, which N ranks count N "
            "times): it cannot be computed by ranks"
        )
    return reduction


def value_and_gradient(params: dict, X, y, loss_fn):
    """loss_of(start, stop): (loss, gradient elements …) on those rows, float64 numpy."""
    import numpy as np
    import torch

    def loss_of(start: int, stop: int):
        with torch.enable_grad():
            value = loss_fn(params, X[start:stop], y[start:stop])
            grads = torch.autograd.grad(
                value, list(params.values()), allow_unused=True, materialize_grads=True
            )
        flat = [g.detach().reshape(-1).double().numpy() for g in grads]
        return np.concatenate([[float(value.detach())], *flat])

    return loss_of


class _Holder:
    """Builds the nn.Module the engine wraps: the parameters, and a forward that calls the loss
    with them by name. FSDP2 shards along dim 0 and has no scalar parameters, so there a
    scalar is held as shape (1,) and reshaped back (a view: no rounding)."""

    @staticmethod
    def build(params: dict, loss_fn, flat_scalars: bool):
        import torch.nn as nn

        shapes = {k: tuple(v.shape) for k, v in params.items()}

        class Parameters(nn.Module):
            def __init__(self):
                super().__init__()
                # Copies: DDP broadcasts rank 0's values into them (X, params share gradcmp's
                # read-only arrays).
                copies = [v.detach().clone() for v in params.values()]
                self.values = nn.ParameterList(
                    nn.Parameter(v.reshape(1) if flat_scalars and v.dim() == 0 else v)
                    for v in copies
                )

            def forward(self, X, y):
                # Reshaped only where held flat (FSDP2's scalars): a view per call adds to the
                # step's time (measured 5–9 % of a linear model's forward+backward).
                by_name = {
                    k: p if p.shape == shapes[k] else p.reshape(shapes[k])
                    for k, p in zip(shapes, self.values)
                }
                return loss_fn(by_name, X, y)

        return Parameters(), shapes


def engine_step(engine: str, problem, dtype, start: int, stop: int, weight, world_size: int):
    """This rank's part: the loss on rows [start, stop) of ``problem`` weighted by ``weight``
    (w_r), through the engine, and the gradient the rank holds afterwards.

    Timed apart, as JAX's compile is: the set-up (the module, DDP's or FSDP2's wrapping, which
    syncs the ranks) and the gradient (the scaled forward+backward and the gradients to numpy:
    what each further step would cost)."""
    import torch
    import torch.distributed as dist

    from ..backends._torch import to_numpy, torch_inputs, torch_loss

    set_up = time.perf_counter()
    params, X, y = torch_inputs(problem, dtype, leaves=False)
    loss_fn, side = torch_loss(problem)
    fsdp = engine == "torch-fsdp"
    module, shapes = _Holder.build(params, loss_fn, flat_scalars=fsdp)
    if fsdp:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        fully_shard(module, mesh=init_device_mesh("cpu", (world_size,)))
        wrapped = module
    else:
        from torch.nn.parallel import DistributedDataParallel

        # A parameter the loss does not use must not hold the reduction back; DDP finds one
        # only with find_unused_parameters, which costs a graph traversal per step (and a
        # warning) where there is none: so a loss file is asked on each rank's own rows (a
        # parameter may be used on some ranks only) and the ranks agree; a built-in model
        # uses every parameter.
        built_in = problem.model.source == "built-in"
        rows = slice(0, 1) if stop == start else slice(start, stop)
        unused = not built_in and _any_rank(_has_unused(module, X[rows], y[rows]))
        wrapped = DistributedDataParallel(module, find_unused_parameters=unused)
    empty = stop == start
    rows = slice(0, 1) if empty else slice(start, stop)
    scale = 0 if empty else weight * world_size
    began = time.perf_counter()
    setup_seconds = began - set_up
    with torch.enable_grad():
        local = wrapped(X[rows], y[rows])
        (local if scale == 1 else local * float(scale)).backward()
    grads = {}
    for (name, shape), p in zip(shapes.items(), module.values):
        g = p.grad
        if g is None:  # not used by the loss: gradient 0, as torch-grad says
            grads[name] = torch.zeros(shape, dtype=p.dtype).numpy().astype("float64")
            continue
        if fsdp:
            g = g.full_tensor()
        grads[name] = to_numpy(g if g.shape == shape else g.reshape(shape))
    seconds = time.perf_counter() - began
    # The full loss: the ranks' weighted losses, summed by an all-reduce.
    share = local.detach() * (0.0 if empty else float(weight))
    dist.all_reduce(share)
    return {
        "loss": float(share),
        "ranks": [grads],
        "seconds": seconds,
        "setup_seconds": setup_seconds,
        "side": side,
    }


def _any_rank(flag: bool) -> bool:
    """Whether ``flag`` holds on any rank (every rank must build DDP alike)."""
    import torch
    import torch.distributed as dist

    value = torch.tensor([1 if flag else 0])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _has_unused(module, X, y) -> bool:
    import torch

    with torch.enable_grad():
        grads = torch.autograd.grad(module(X, y), list(module.parameters()), allow_unused=True)
    return any(g is None for g in grads)


def _user_step(problem, dtype, shards: Shards, rank: int) -> dict:
    """The loss file's ``grad_torch_dist(params, X, y, ctx)`` on this rank's rows."""
    import torch
    import torch.distributed as dist

    from ..backends._torch import to_numpy, torch_inputs
    from .context import RankContext

    params, X, y = torch_inputs(problem, dtype)
    start, stop = shards.bounds[rank]
    ctx = RankContext(
        rank=rank,
        world_size=len(shards.bounds),
        rows=shards.rows,
        shard=(start, stop),
        group=dist.group.WORLD,
        dtype=dtype.name,
    )
    began = time.perf_counter()
    with torch.enable_grad():
        answer = problem.model.distributed_steps["torch"](params, X[start:stop], y[start:stop], ctx)
    seconds = time.perf_counter() - began
    loss, grads = answer if isinstance(answer, tuple) else (None, answer)
    grads = {k: to_numpy(torch.as_tensor(g)) for k, g in grads.items()}
    loss = None if loss is None else float(torch.as_tensor(loss).detach().double())
    return {"loss": loss, "ranks": [grads], "seconds": seconds, "side": "grad_torch_dist"}
