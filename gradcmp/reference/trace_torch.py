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

import contextlib
import operator
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterator

import numpy as np

from . import highprec as hp
from . import torch_kinks as kinks
from . import torch_rules as rules
from .shadow import (
    BACKWARD,
    FORWARD,
    INPUT,
    ShadowGraph,
    Step,
    describe_nonfinite,
    finite_images,
    source_line,
    user_location,
    why_not_finite,
)

_FRAME = re.compile(r'File "([^"]+)", line (\d+)')
_VIEWS = {"alias", "view", "expand", "permute", "t", "transpose", "select", "slice", "unfold"}
_VIEWS |= {"unsqueeze", "squeeze", "diagonal", "as_strided", "split", "split_with_sizes"}


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
    graph = _Evaluation(module, list(params), side, user_file).run(params, X, y)
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


def _float64(array: np.ndarray) -> np.ndarray:
    """X and y as the loss sees them in float64 (integer labels stay integers)."""
    return array.astype(np.float64) if array.dtype.kind == "f" else array


def _decompositions() -> dict:
    """Core ATen, plus the composite forward kernels torch's decompositions spell out."""
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


# --- Evaluation -------------------------------------------------------------------------------


@contextlib.contextmanager
def _ieee_evaluation() -> Iterator[None]:
    """MPFR in IEEE mode, highprec's one BLAS thread, and no reverse-mode recording: the graph
    holds the backward pass already, and closures kept for another would keep every value."""
    recording = hp.tracked._recording
    previous, recording[0] = recording[0], False
    try:
        with hp.working_precision(ieee=True), hp._one_blas_thread():
            yield
    finally:
        recording[0] = previous


class _Evaluation:
    """One pass over the graph's nodes: values in ``env`` (each freed after its last use), a
    Step per float tensor."""

    def __init__(self, module, names: list[str], side: str, user_file: str):
        self.module, self.names, self.side, self.user_file = module, names, side, user_file
        self.steps: list[Step] = []
        self.step_of: dict = {}  # node → index of its step
        self.live: set = set()  # nodes that depend on a parameter
        self.tied: set = set()  # boolean nodes from a comparison of equal values
        self.tuple_kinks: dict = {}  # multi-output node (max.dim) → its kink, for its getitem
        self.locations: dict[str, tuple[str, int, str]] = {}

    def run(self, params, X, y) -> ShadowGraph:
        nodes = list(self.module.graph.nodes)
        self.position = {node: i for i, node in enumerate(nodes)}
        last_use = {used: i for i, node in enumerate(nodes) for used in node.all_input_nodes}
        results = nodes[-1].args[0]
        boundary = self.position[results[0]]  # the loss: what comes after is the backward pass
        inputs = iter(zip([*self.names, "X", "y"], [*params.values(), X, y]))
        env: dict = {}
        with _ieee_evaluation():
            for position, node in enumerate(nodes[:-1]):
                if node.op == "placeholder":
                    env[node] = self._input(node, *next(inputs))
                elif node.op == "get_attr":
                    env[node] = self._constant(node)
                else:
                    env[node] = self._call(node, env, FORWARD if position <= boundary else BACKWARD)
                for used in node.all_input_nodes:
                    if last_use[used] == position and used not in results:
                        del env[used]
            values = [rules.as_tracked(env[node]) for node in results]
        loss, grads = values[0], dict(zip(self.names, values[1:]))
        if loss.size != 1:
            raise ValueError(f"{self.side}: the loss has shape {loss.shape}, expected a scalar")
        outputs = {"loss": self.step_of.get(results[0], -1)}
        outputs |= {n: self.step_of.get(r, -1) for n, r in zip(self.names, results[1:])}
        self._check_finite(loss, grads, outputs)
        return ShadowGraph(self.side, "torch", hp.reshape(loss, ()), grads, self.steps, outputs)

    def _input(self, node, label, array):
        array = _float64(np.asarray(array))
        if array.dtype.kind != "f":
            return array
        value = hp.leaf(array)
        self._record(node, "input", value, (), INPUT, name=label)
        if label in self.names:
            self.live.add(node)
        return value

    def _constant(self, node):
        tensor = getattr(self.module, node.target).detach()
        if not tensor.is_floating_point():
            return tensor.numpy()
        value = hp.constant(tensor.numpy().astype(np.float64))
        self._record(node, "constant", value, (), FORWARD)
        return value

    def _call(self, node, env, phase):
        from torch.fx.node import map_arg

        args, kwargs = map_arg((node.args, node.kwargs), lambda n: env[n])
        if node.target is operator.getitem:  # one output of a multi-output op
            value, op = args[0][args[1]], f"{_name(node.args[0].target)}[{node.args[1]}]"
            sources = node.args[0].all_input_nodes
        else:
            op, dtype, sources = _name(node.target), _dtype(node), node.all_input_nodes
            rule = rules.RULES.get(_functional(op))
            arithmetic = dtype is not None and dtype.is_floating_point and rules.is_arithmetic(op)
            if not rules.any_tracked([*args, *kwargs.values()]) and not arithmetic:
                value = _by_torch(node.target, args, kwargs)  # integers, masks, constants
            elif rule is None:
                raise hp.UnsupportedOperation(f"torch op {op} at {self._where(node)}")
            else:
                value = rules.apply(op, rule, args, kwargs, dtype)
        if any(n in self.live for n in node.all_input_nodes):
            self.live.add(node)
        kink = self._kink(node, op, args, kwargs) if phase == FORWARD else ""
        if node.target is operator.getitem:  # max(dim)'s values: the kink of max(dim)
            kink = self.tuple_kinks.get(node.args[0], "") if phase == FORWARD else ""
        elif kink and not isinstance(value, hp.Tracked):
            self.tuple_kinks[node] = kink
        if kinks.compares_equal(op, args) or (
            isinstance(value, np.ndarray) and any(n in self.tied for n in node.all_input_nodes)
        ):
            self.tied.add(node)
        if isinstance(value, hp.Tracked):
            inputs = tuple(self.step_of[n] for n in sources if n in self.step_of)
            self._record(node, op, value, inputs, phase, kink=kink)
            narrowed = node.kwargs.get("dtype") if op == "aten._to_copy.default" else None
            if narrowed is not None and narrowed.is_floating_point and narrowed.itemsize < 8:
                self.steps[-1].narrows = str(narrowed).removeprefix("torch.")
        if _in_place(node):
            self._write(node, op, env, value)
        return value

    def _kink(self, node, op, args, kwargs) -> str:
        """Kinks of the ops torch differentiated where a parameter's gradient flows: not of
        the pieces of a decomposed op whose derivative is a formula of its own (BCE with
        logits' minimum(0, x)), except a renamed op's and a thresholding op's where()."""
        original = _name(node.meta.get("original_aten", node.target))
        if node not in self.live:
            return ""
        if op == "aten.where.self" and node.args[0] in self.tied:
            if original == op or original in kinks.THRESHOLDS:
                name = "torch.where" if original == op else original
                return (
                    f"{name} at a tie of its comparison: torch differentiates the branch it picks"
                )
        if original != op and original not in kinks.RENAMED:
            return ""
        return kinks.kink(op, args, kwargs)

    def _write(self, node, op, env, value) -> None:
        """An in-place op (a decomposition's ``div_``): later readers of its operand see the
        result. Sound only where no view shares the operand's memory."""
        target, position = node.args[0], self.position[node]
        views = [u for u in target.users if _is_view(u) and self.position[u] < position]
        if _is_view(target) or any(self.position[w] > position for u in views for w in u.users):
            raise hp.UnsupportedOperation(
                f"torch op {op} writes through a view at {self._where(node)}"
            )
        env[target] = value
        if node in self.step_of:
            self.step_of[target] = self.step_of[node]

    def _record(self, node, op, value, inputs, phase, name="", kink=""):
        file, line, code = self._location(node)
        image, magnitude = finite_images(value)
        index = len(self.steps)
        self.steps.append(
            Step(index, op, inputs, image, magnitude, phase, name, file, line, code, kink)
        )
        self.step_of[node] = index

    def _location(self, node) -> tuple[str, int, str]:
        stack = node.meta.get("stack_trace") or ""
        if stack not in self.locations:
            frames = [(f, int(n)) for f, n in _FRAME.findall(stack)]
            file, line = user_location(frames, self.user_file)
            self.locations[stack] = (file, line, source_line(file, line))
        return self.locations[stack]

    def _where(self, node) -> str:
        file, line, _ = self._location(node)
        return f"{file}:{line}"

    def _check_finite(self, loss, grads, outputs) -> None:
        """A NaN or inf in the loss or a gradient: name the step where it began, following
        non-finite inputs back from the output to a step whose inputs were all finite."""
        for name, value in (("loss", loss), *grads.items()):
            if np.isfinite(value.f).all():
                continue
            if outputs.get(name, -1) < 0:
                raise hp.NotDifferentiable(f"{self.side}: the {name} is not finite")
            step = self.steps[outputs[name]]
            while bad := [i for i in step.inputs if not np.isfinite(self.steps[i].value).all()]:
                step = self.steps[min(bad)]
            operands = [self.steps[i].value for i in step.inputs]
            why = why_not_finite(step.op, operands, step.value) or "a non-finite input"
            raise hp.NotDifferentiable(describe_nonfinite(self.side, step, why))


def _by_torch(target, args, kwargs):
    """A node that reads no float tensor, run by torch itself: exact, as integer and boolean
    arithmetic is; a float tensor it makes (a ``full``, an ``arange``) holds the float64
    values torch uses, which become constants."""
    import torch
    from torch.utils._pytree import tree_map

    def to_torch(x):
        return torch.from_numpy(np.array(x)) if isinstance(x, np.ndarray) else x

    def from_torch(x):
        if not isinstance(x, torch.Tensor):
            return x
        array = x.detach().numpy()
        return hp.constant(array.astype(np.float64)) if x.is_floating_point() else array

    return tree_map(from_torch, target(*tree_map(to_torch, args), **tree_map(to_torch, kwargs)))


def _name(target) -> str:
    """'aten.add.Tensor' for an OpOverload; the function's name otherwise."""
    return str(target) if hasattr(target, "_schema") else getattr(target, "__name__", "?")


def _functional(op: str) -> str:
    """The out-of-place overload of an in-place one: aten.div_.Scalar → aten.div.Scalar."""
    namespace, name, overload = op.split(".") if op.count(".") == 2 else ("", op, "")
    if name.endswith("_") and not name.endswith("__"):
        return f"{namespace}.{name[:-1]}.{overload}"
    return op


def _in_place(node) -> bool:
    return node.op == "call_function" and _functional(_name(node.target)) != _name(node.target)


def _is_view(node) -> bool:
    if node.target is operator.getitem:
        return _is_view(node.args[0])
    parts = _name(node.target).split(".")
    return node.op == "call_function" and len(parts) == 3 and parts[1] in _VIEWS


def _base(node):
    """The tensor a chain of views looks into."""
    while _is_view(node) and node.args:
        node = node.args[0]
    return node


def _dtype(node):
    """The torch dtype of a node's (first) tensor output, or None."""
    value = node.meta.get("val")
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return getattr(value, "dtype", None)
