"""The torch side of a port, exactly: trace what torch differentiates, evaluate it in MPFR.

``trace`` records ``loss_torch``'s forward *and* backward pass as one ATen graph (``make_fx``
over the loss and ``torch.autograd.grad``: eager autograd, whose formulas are torch's own,
conventions included — relu's slope 0 at 0, torch.maximum's ½/½ at a tie, BCE's log clamped
at −100; functorch's ``grad`` would swap some composite ops for their decompositions).
torch's decompositions spell kernels out in core ATen with the kernels' float64 constants,
and a formula's exact value does not depend on how a kernel orders its roundings; where a
decomposition departs from its kernel the op stays whole and ``torch_rules`` has the
kernel's formula (binary_cross_entropy_backward). Each node is evaluated by ``torch_rules``
in highprec's IEEE mode (log 0 = −inf, 0/0 = NaN, as torch) and recorded as a ``Step``.

Where a node comes from: a ``TorchFunctionMode`` hands the Python stack of each torch call
of the loss to ``torch.fx.traceback`` (``preserve_node_meta``), which stamps it on the
call's nodes; anomaly mode keeps it on the autograd node, and a pre-hook puts it back while
the node's backward formula runs (as AOTAutograd does), so a backward node carries the line
of the forward call it differentiates.
"""

from __future__ import annotations

import functools
import time
import traceback
import warnings
from collections.abc import Callable

import numpy as np

from .evaluate_torch import Evaluation, _base, _float64, _in_place
from .shadow import (
    ShadowGraph,
)


def shadow_torch(
    loss_torch: Callable,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    side: str = "loss_torch",
    user_file: str,
) -> ShadowGraph:
    """The exact loss and gradient of ``loss_torch(params, X, y)`` as torch differentiates
    it, with one Step per operation of its forward and backward graph."""
    start = time.perf_counter()
    module = trace(loss_torch, params, X, y)
    graph = Evaluation(module, list(params), side, user_file).run(params, X, y)
    graph.seconds = time.perf_counter() - start
    return graph


# --- Tracing ----------------------------------------------------------------------------------


def trace(loss_torch: Callable, params: dict[str, np.ndarray], X, y):
    """The joint forward + backward ATen graph of ``loss_torch`` at these values (float64).
    Placeholders: the parameters in ``params``' order, X, y; outputs: the loss, then each
    parameter's gradient (zeros where the loss does not use it)."""
    import torch
    from torch.fx import traceback as fx_traceback
    from torch.fx.experimental.proxy_tensor import make_fx
    from torch.nn.attention import SDPBackend, sdpa_kernel

    names, count = list(params), len(params)

    def joint(*flat):
        primals = list(flat[:count])
        with fx_traceback.preserve_node_meta(), torch.enable_grad():
            with _stack_recorder(), torch.autograd.detect_anomaly(check_nan=False):
                loss = loss_torch(dict(zip(names, primals)), *flat[count:])
            fx_traceback.set_stack_trace([])  # the seed of the backward pass: no user line
            if not isinstance(loss, torch.Tensor) or loss.grad_fn is None:
                return (torch.as_tensor(loss), *(torch.zeros_like(p) for p in primals))
            _backward_locations(loss.grad_fn)
            grads = torch.autograd.grad(loss, primals, allow_unused=True, materialize_grads=True)
        return (loss, *grads)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # from_numpy of read-only arrays; anomaly mode
        leaves = [torch.tensor(np.asarray(v, dtype=np.float64)) for v in params.values()]
        data = [torch.from_numpy(_float64(np.asarray(a))) for a in (X, y)]
        for leaf in leaves:
            leaf.requires_grad_(True)
        # scaled_dot_product_attention's math backend: composite ops with derivatives (the
        # fused CPU kernel's backward has no decomposition)
        with sdpa_kernel(SDPBackend.MATH):
            # (data-dependent Python, ``if x.item() > 0``, is traced at these values)
            trace_at = make_fx(joint, _decompositions(), _error_on_data_dependent_ops=False)
            module = trace_at(*leaves, *data)
    _prune(module.graph)
    return module


@functools.cache
def _decompositions() -> dict:
    """Core ATen, plus the composite forward kernels torch's decompositions spell out (made
    once per process: torch builds the core table afresh on each call, 0.2 s; make_fx copies
    the table it is given). A custom op registered after the first trace is not in it; the
    dispatcher still expands its CompositeImplicitAutograd kernel while tracing, the same
    graph."""
    import torch
    from torch._decomp import core_aten_decompositions, get_decompositions

    aten = torch.ops.aten
    table = dict(core_aten_decompositions())
    forward = [aten.gelu, aten.native_layer_norm, aten._log_softmax, aten._softmax, aten.elu]
    forward += [aten.native_group_norm, aten.native_batch_norm, aten._native_batch_norm_legit]
    forward += [aten._native_batch_norm_legit_functional, aten.embedding, aten.diagonal_scatter]
    table.update(get_decompositions(forward))
    for kept in (aten.mv.default, aten.dot.default):  # matrix products stay limb-exact
        table.pop(kept, None)
    # Its decomposition clamps p(1 − p) at float64's 1e-12, torch's CPU kernel at float32's
    # 1e-12 (9.99999996e-13): the rule follows the kernel.
    table.pop(aten.binary_cross_entropy_backward.default, None)
    return table


def _stack_recorder():
    """A TorchFunctionMode stamping each torch call's Python stack on the nodes it makes (the
    mode is off inside its own handler: only the loss's own calls are seen)."""
    from torch.fx import traceback as fx_traceback
    from torch.overrides import TorchFunctionMode

    class StackRecorder(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            fx_traceback.set_stack_trace(traceback.format_stack()[:-1])
            return func(*args, **(kwargs or {}))

    return StackRecorder()


def _backward_locations(root) -> None:
    """Pre-hooks on every autograd node: while its backward formula runs, the stack of the
    forward call that made it (anomaly mode's ``traceback_``) is the current node meta."""
    from torch.fx import traceback as fx_traceback

    seen, pending = set(), [root]
    while pending:
        node = pending.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        pending.extend(fn for fn, _ in node.next_functions)
        stack = node.metadata.get("traceback_", [])
        node.register_prehook(lambda grads, stack=stack: fx_traceback.set_stack_trace(stack))


def _prune(graph) -> None:
    """Drop what the outputs do not need. make_fx keeps every in-place op, as impure: the
    random initialisation of a module the loss builds and then swaps its parameters out of.
    An in-place op stays where what it writes into (through views) is needed."""
    nodes, live = list(graph.nodes), set()

    def need(node):
        pending = [node]
        while pending:
            if (n := pending.pop()) not in live:
                live.add(n)
                pending.extend(n.all_input_nodes)

    need(nodes[-1])
    writes = [n for n in nodes if n.op == "call_function" and _in_place(n)]
    while grown := [n for n in writes if n not in live and _base(n.args[0]) in live]:
        for n in grown:
            need(n)
    for node in reversed(nodes):
        if node not in live and node.op in ("call_function", "get_attr"):
            graph.erase_node(node)
