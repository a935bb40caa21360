"""Shadow evaluation of a JAX loss (``shadow``): its jaxpr, backward pass included, exactly.

``jax.make_jaxpr(jax.value_and_grad(...))`` writes the whole program JAX runs for the loss and
its gradient as a list of primitive equations — the forward pass, and the backward pass JAX
derived from its own rules (custom_jvp rules such as ``jax.nn.relu``'s, the ½/½ split of
``max`` at a tie, ``where``'s masking). This module interprets that jaxpr (after the JAX
documentation's "Writing custom Jaxpr interpreters": an environment from variables to values,
one rule per primitive in ``jax_rules``) in high precision, so the result is the exact value
of the very program JAX differentiates, each operation recorded as a ``Step`` with the line
of the user's file it came from.

IEEE semantics: MPFR does not trap here (log 0 = −inf, 0/0 = NaN), so a program that makes an
infinity and masks it away is evaluated as JAX evaluates it; only a non-finite loss or gradient
is an error, named after the step that first made a non-finite value from finite ones.
"""

from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass, replace

import numpy as np

from . import highprec as hp
from . import jax_rules as rules
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

_CALLS = ("jit", "pjit", "closed_call", "core_call", "remat2", "checkpoint", "custom_jvp_call")
_CALLS += ("custom_vjp_call", "custom_vjp_call_jaxpr", "composite")
_ORDERING = ("gt", "ge", "lt", "le")  # comparisons whose tie is a kink of what they select
# Boolean primitives a comparison's tie passes through on its way to a select_n: unchanged,
# or moved as the booleans are.
_TIE_SAME = ("not", "convert_element_type", "copy", "copy_p")
_TIE_MOVED = ("broadcast_in_dim", "reshape", "squeeze", "transpose", "rev", "slice")


class _Value:
    """A variable's value, with what the steps need: the step that produced it, whether it
    depends on a parameter (differentiably), the step where its first non-finite element
    came from, and for a boolean from a comparison, where that comparison was a tie."""

    __slots__ = ("value", "step", "dep", "origin", "tie")

    def __init__(self, value, step=None, dep=False, origin=None, tie=None):
        self.value, self.step, self.dep, self.origin, self.tie = value, step, dep, origin, tie


@dataclass(frozen=True)
class _Context:
    phase: str  # FORWARD | BACKWARD: inner equations inherit their caller's
    where: tuple[str, int]  # the caller's location, for inner equations without their own
    custom: str | None = None  # inside a custom_jvp function: its name (relu …)


# One pass over a jaxpr: which equations matter (live), which variables feed the loss
# differentiably (sensitive: a kink there matters), after which equation each one is dead.
_Plan = namedtuple("_Plan", "live sensitive frees")


def shadow_jax(
    loss_jax,
    params: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    *,
    side="loss_jax",
    user_file: str,
) -> ShadowGraph:
    """The exact semantics of ``jax.value_and_grad(loss_jax)`` at (params, X, y), in float64
    inputs: the loss, the gradient and one step per float result of the program."""
    import jax

    start = time.perf_counter()
    p64 = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    X64 = np.asarray(X, dtype=np.float64)
    y64 = np.asarray(y, dtype=np.int64 if np.asarray(y).dtype.kind in "iu" else np.float64)

    def program(p, X_, y_):
        return jax.value_and_grad(lambda q: loss_jax(q, X_, y_))(p)

    with jax.enable_x64(True):
        closed = jax.make_jaxpr(program)(p64, X64, y64)
        order = jax.tree_util.tree_leaves({k: k for k in p64})  # JAX's order of the params
        shadow = _Interpreter(user_file)
        # numpy's BLAS on one thread: its products here are many and small (highprec's note)
        with hp.working_precision(ieee=True), hp._one_blas_thread():
            leaves = {"X": shadow.leaf("X", X64), "y": shadow.leaf("y", y64)}  # steps 0, 1, …
            leaves |= {k: shadow.leaf(k, p64[k], dep=True) for k in order}
            args = [leaves[k] for k in (*order, "X", "y")]  # the jaxpr's order
            top = _Context(FORWARD, ("", 0))
            sens = (True,) + (False,) * len(order)  # a kink matters where it reaches the loss
            outs = shadow.run(closed.jaxpr, closed.consts, args, top, sens)
    results = dict(zip(["loss", *order], outs))
    for out in results.values():
        if out.step is None:  # an output that is a constant of the program
            out.step = shadow.record("literal", rules.wrap(out.value), [], BACKWARD, ("", 0))
    for label, out in results.items():
        if not np.isfinite(rules.wrap(out.value).f).all():
            first = out.origin if out.origin is not None else out.step
            why = shadow.why.get(first) or f"a non-finite value reaches {label}"
            raise hp.NotDifferentiable(describe_nonfinite(side, shadow.steps[first], why))
    loss = rules.wrap(results.pop("loss").value).reshape(())
    grads = {k: rules.wrap(results[k].value).reshape(p64[k].shape) for k in p64}
    outputs = {"loss": outs[0].step, **{k: results[k].step for k in p64}}
    seconds = time.perf_counter() - start
    return ShadowGraph(side, "jax", loss, grads, shadow.steps, outputs, seconds)


def _open(j):
    """(jaxpr, consts) of a ClosedJaxpr or an open Jaxpr."""
    return (j.jaxpr, j.consts) if hasattr(j, "consts") else (j, [])


class _Interpreter:
    def __init__(self, user_file: str):
        self.user_file = user_file
        self.steps: list[Step] = []
        self.why: dict[int, str] = {}  # origin step → what made the non-finite value
        self._plans: dict = {}
        self._lines: dict = {}
        self._places: dict = {}

    # --- steps and their places ---------------------------------------------------------------
    def record(self, op, value, inputs, phase, where, kink="", name="") -> int:
        f, a = finite_images(value)
        file, line = where
        inputs = tuple(dict.fromkeys(i for i in inputs if i is not None))
        step = Step(len(self.steps), op, inputs, f, a, phase, name, file, line, "", kink)
        step.code = source_line(file, line)
        self.steps.append(step)
        return step.index

    def leaf(self, name, values, dep=False) -> _Value:
        if values.dtype.kind != "f":  # integer class labels: plain values, no step
            return _Value(values)
        value = hp.leaf(values)
        return _Value(value, self.record("input", value, [], INPUT, ("", 0), name=name), dep)

    def place(self, eqn) -> tuple[str, int] | None:
        """The user's (file, line) of an equation: the innermost frame of its traceback in
        the user's file, else outside the libraries; None where it has no traceback."""
        from jax._src.source_info_util import raw_frame_to_frame

        tb = eqn.source_info.traceback
        if tb is None:
            return None
        frames = []
        for code, last in zip(*tb.raw_frames()):
            if "/jax/" in code.co_filename or "/jaxlib/" in code.co_filename:
                continue  # JAX's own frames: never the place
            key = (code, last)
            if key not in self._lines:
                self._lines[key] = (code.co_filename, raw_frame_to_frame(code, last).start_line)
            frames.append(self._lines[key])
        frames = tuple(reversed(frames))  # outermost first
        if frames not in self._places:
            self._places[frames] = user_location(list(frames), self.user_file)
        found = self._places[frames]
        return found if found[0] else None

    # --- one jaxpr ----------------------------------------------------------------------------
    def plan(self, jaxpr, sensitive_out) -> _Plan:
        key = (id(jaxpr), tuple(sensitive_out))
        if key in self._plans:
            return self._plans[key][1]
        from jax.extend.core import Var

        needed = {v for v in jaxpr.outvars if isinstance(v, Var)}
        sensitive = {v for v, s in zip(jaxpr.outvars, sensitive_out) if s and isinstance(v, Var)}
        live, frees = [False] * len(jaxpr.eqns), {}
        for i in reversed(range(len(jaxpr.eqns))):
            eqn = jaxpr.eqns[i]
            if not any(o in needed for o in eqn.outvars if isinstance(o, Var)):
                continue
            live[i] = True
            ins = [v for v in eqn.invars if isinstance(v, Var)]
            frees[i] = [v for v in dict.fromkeys(ins) if v not in needed]
            needed.update(ins)
            if eqn.primitive.name != "stop_gradient" and any(o in sensitive for o in eqn.outvars):
                sensitive.update(v for v in ins if rules.is_float_dtype(v.aval.dtype))
        plan = _Plan(live, sensitive, frees)
        self._plans[key] = (jaxpr, plan)  # the jaxpr kept alive: its id stays its own
        return plan

    def run(self, jaxpr, consts, args, ctx: _Context, sensitive_out) -> list[_Value]:
        from jax.extend.core import DropVar, Literal

        plan = self.plan(jaxpr, sensitive_out)
        env = {v: _Value(rules.constant(c, v.aval.dtype)) for v, c in zip(jaxpr.constvars, consts)}
        env.update(zip(jaxpr.invars, args))

        def read(atom) -> _Value:
            if isinstance(atom, Literal):
                return _Value(rules.constant(atom.val, atom.aval.dtype))
            return env[atom]

        for i, eqn in enumerate(jaxpr.eqns):
            if not plan.live[i]:
                continue
            ins = [read(a) for a in eqn.invars]
            backward = "transpose(" in str(eqn.source_info.name_stack)
            here = _Context(BACKWARD if backward else ctx.phase, self.place(eqn) or ctx.where)
            here = replace(here, custom=ctx.custom)
            sens = [o in plan.sensitive for o in eqn.outvars]
            name = eqn.primitive.name
            try:
                if name in _CALLS:
                    outs = self.call(eqn, ins, here, sens)
                elif name in ("cond", "while", "scan"):
                    outs = getattr(self, "_" + name)(eqn, ins, here, sens)
                else:
                    outs = self.apply(eqn, ins, here, any(sens))
            except hp.UnsupportedOperation as exc:
                if str(exc).startswith("jax primitive"):
                    raise
                detail = f" ({exc})" if str(exc) else ""
                file, line = here.where
                raise hp.UnsupportedOperation(
                    f"jax primitive {name}{detail} at {file}:{line}"
                ) from exc
            for o, out in zip(eqn.outvars, outs):
                if not isinstance(o, DropVar):
                    env[o] = out
            for v in plan.frees[i]:
                env.pop(v, None)  # dead from here on: its MPFR array can go
        return [read(v) for v in jaxpr.outvars]

    # --- one equation ---------------------------------------------------------------------------
    def apply(self, eqn, ins: list[_Value], ctx: _Context, sensitive: bool) -> list[_Value]:
        name, params = eqn.primitive.name, eqn.params
        values = [v.value for v in ins]
        floats = [rules.is_float_dtype(getattr(o.aval, "dtype", None)) for o in eqn.outvars]
        tracked = [isinstance(x, hp.Tracked) for x in values]
        rule = rules.RULES.get(name)
        if rule is not None and (any(tracked) or any(floats)):
            raw = rule(*values, **params)
        elif not any(floats):  # integers and booleans: float operands as float64 images
            images = [x.f if t else x for x, t in zip(values, tracked)]
            plain = rules.PLAIN.get(name)
            raw = plain(*images, **params) if plain else eqn.primitive.bind(*images, **params)
        else:
            raise hp.UnsupportedOperation()
        raws = list(raw) if eqn.primitive.multiple_results else [raw]
        float_ins = [v for v, t in zip(ins, tracked) if t]
        dep = name != "stop_gradient" and any(v.dep for v in ins)
        outs = []
        for o, out, is_float in zip(eqn.outvars, raws, floats):
            if not is_float:
                out = np.asarray(np.asarray(out).astype(o.aval.dtype))
                outs.append(_Value(out, None, dep, None, self.tie(name, ins, params, out)))
                continue
            out = rules.settled(rules.wrap(out), [v.value for v in float_ins])
            kink = self.kink(name, ins, out, params, ctx) if sensitive and dep else ""
            step = self.record(name, out, [v.step for v in ins], ctx.phase, ctx.where, kink)
            if name == "convert_element_type" and np.dtype(o.aval.dtype).itemsize < 8:
                self.steps[step].narrows = np.dtype(o.aval.dtype).name
            outs.append(_Value(out, step, dep, self.origin(name, float_ins, out, step)))
        return outs

    def origin(self, name, float_ins: list[_Value], out, step: int) -> int | None:
        """Where the first non-finite element of ``out`` came from: this step, if its float
        operands were finite (and why), else the earliest origin among those that were not."""
        if np.isfinite(out.f).all():
            return None
        earlier = [v.origin for v in float_ins if not np.isfinite(v.value.f).all()]
        earlier = [o for o in earlier if o is not None]
        if earlier:
            return min(earlier)
        why = why_not_finite(name, [v.value.f for v in float_ins], out.f)
        self.why[step] = why or "an infinite or NaN constant of the program"
        return step

    def tie(self, name, ins: list[_Value], params, out) -> np.ndarray | None:
        """For a boolean: where a comparison of values depending on a parameter was a tie,
        carried through the boolean operations between it and a select_n."""
        if name in _ORDERING and any(v.dep for v in ins):
            return np.broadcast_to(rules.equal(ins[0].value, ins[1].value), out.shape)
        ties = [v.tie for v in ins if v.tie is not None]
        if not ties:
            return None
        if name in ("and", "or"):
            return np.broadcast_to(np.logical_or.reduce(np.broadcast_arrays(*ties)), out.shape)
        if name in _TIE_SAME and ins[0].tie is not None:
            return ins[0].tie
        if name in _TIE_MOVED and ins[0].tie is not None:
            rest = [v.value for v in ins[1:]]
            return np.asarray(rules.PLAIN[name](ins[0].tie, *rest, **params), dtype=bool)
        return None

    def kink(self, name, ins: list[_Value], out, params, ctx: _Context) -> str:
        """Non-empty where the forward op the user wrote ran exactly at a kink or tie."""
        if ctx.phase != FORWARD:
            return ""
        if name == "select_n":
            count = int(np.count_nonzero(ins[0].tie)) if ins[0].tie is not None else 0
            found = rules.KINKS["select_n"] if count else ""
            total = np.size(ins[0].value)
        else:
            found, count, total = rules.kink(name, [v.value for v in ins], out, params)
        if not found:
            return ""
        if ctx.custom is not None:  # a custom_jvp function: its rule decides, smooth or not
            found = rules.CUSTOM_KINKS.get(ctx.custom, "")
        return f"{found} ({count} of {total} elements)" if found else ""

    # --- nested jaxprs --------------------------------------------------------------------------
    def call(self, eqn, ins, ctx: _Context, sens) -> list[_Value]:
        params = eqn.params
        inner = next(params[k] for k in ("jaxpr", "call_jaxpr", "fun_jaxpr") if k in params)
        if eqn.primitive.name == "custom_jvp_call":
            info = getattr(_open(inner)[0], "debug_info", None)  # "relu at …/functions.py:71"
            ctx = replace(ctx, custom=getattr(info, "func_name", None) or "custom_jvp")
        jaxpr, consts = _open(inner)
        return self.run(jaxpr, consts, ins, ctx, sens)

    def _cond(self, eqn, ins, ctx, sens) -> list[_Value]:
        branches = eqn.params["branches"]
        index = min(max(int(np.asarray(ins[0].value)), 0), len(branches) - 1)
        jaxpr, consts = _open(branches[index])
        return self.run(jaxpr, consts, ins[1:], ctx, sens)

    def _while(self, eqn, ins, ctx, sens) -> list[_Value]:
        p = eqn.params
        (cj, cc), (bj, bc) = _open(p["cond_jaxpr"]), _open(p["body_jaxpr"])
        nc, nb = p["cond_nconsts"], p["body_nconsts"]
        cond_consts, body_consts, carry = ins[:nc], ins[nc : nc + nb], ins[nc + nb :]
        while bool(np.asarray(self.run(cj, cc, cond_consts + carry, ctx, (False,))[0].value)):
            carry = self.run(bj, bc, body_consts + carry, ctx, sens)
        return carry

    def _scan(self, eqn, ins, ctx, sens) -> list[_Value]:
        """Unrolled: the body once per element of the scanned axis, its stacked outputs one
        step each."""
        from jax.extend.core import DropVar

        p = eqn.params
        jaxpr, consts = _open(p["jaxpr"])
        nc, ncarry, length = p["num_consts"], p["num_carry"], p["length"]
        fixed, carry, xs = ins[:nc], ins[nc : nc + ncarry], ins[nc + ncarry :]
        body_sens = (any(sens),) * len(jaxpr.outvars)
        outvars, stacks = eqn.outvars[ncarry:], [[] for _ in jaxpr.outvars[ncarry:]]
        for t in reversed(range(length)) if p["reverse"] else range(length):
            sliced = [
                _Value(rules.each(lambda a, t=t: a[t], x.value), x.step, x.dep, x.origin)
                for x in xs
            ]
            outs = self.run(jaxpr, consts, fixed + carry + sliced, ctx, body_sens)
            carry = outs[:ncarry]
            for stack, out in zip(stacks, outs[ncarry:]):
                stack.append(out)
        stacks = [s[::-1] if p["reverse"] else s for s in stacks]
        ys = [
            None if isinstance(o, DropVar) else self.stack(o, s, ctx)
            for o, s in zip(outvars, stacks)
        ]
        return carry + ys

    def stack(self, var, parts: list[_Value], ctx) -> _Value:
        if not parts:
            return _Value(rules.constant(np.zeros(var.aval.shape), var.aval.dtype))
        value = rules.each(lambda *ts: np.stack(ts), *(v.value for v in parts))
        dep = any(v.dep for v in parts)
        if not isinstance(value, hp.Tracked):
            return _Value(value, None, dep)
        step = self.record("scan", value, [v.step for v in parts], ctx.phase, ctx.where)
        origins = [v.origin for v in parts if v.origin is not None]
        return _Value(value, step, dep, min(origins) if origins else None)
