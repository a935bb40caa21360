"""Evaluating a traced torch graph exactly: each ATen node by ``torch_rules`` in highprec's
IEEE mode, recorded as a ``Step`` with where it came from (trace_torch.py traces the graph).
"""

from __future__ import annotations

import contextlib
import operator
import re
from collections.abc import Iterator

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


def _float64(array: np.ndarray) -> np.ndarray:
    """X and y as the loss sees them in float64 (integer labels stay integers)."""
    return array.astype(np.float64) if array.dtype.kind == "f" else array


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


class Evaluation:
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
