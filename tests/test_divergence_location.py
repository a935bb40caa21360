"""Where two sides of a port part (reference.align): synthetic shadow graphs built by hand from
real high-precision values, one Step per op, as the tracers would record them."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from fractions import Fraction

import gmpy2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcmp.params import element_names
from gradcmp.reference import highprec
from gradcmp.reference.align import locate
from gradcmp.reference.compute import ReferenceValues
from gradcmp.reference.highprec import Tracked
from gradcmp.reference.shadow import BACKWARD, FORWARD, INPUT, ShadowGraph, Step, finite_images

FILE = "/home/user/port.py"
RNG = np.random.default_rng(7)
X = RNG.normal(size=(12, 3))
Y = RNG.normal(size=12)
W = np.array([0.5, -0.25, 1.5])


@contextlib.contextmanager
def working_precision():
    """MPFR at the reference's precision, for ops run outside ``value_and_grad``."""
    previous = gmpy2.get_context()
    gmpy2.set_context(gmpy2.context(precision=highprec.PRECISION_BITS))
    try:
        yield
    finally:
        gmpy2.set_context(previous)


class Tape:
    """Records one side's ops as Steps with real 200-bit values (``finite_images``)."""

    def __init__(self, side: str):
        self.side, self.steps, self.ids = side, [], {}

    def _record(self, value, op, inputs, line, code, phase, name="", kink="") -> Tracked:
        f, a = finite_images(value)
        index = len(self.steps)
        self.steps.append(
            Step(index, op, inputs, f, a, phase, name, FILE if line else "", line, code, kink)
        )
        self.ids[id(value)] = index
        return value

    def input(self, name: str, value: Tracked) -> Tracked:
        return self._record(value, "input", (), 0, "", INPUT, name=name)

    def const(self, value, line: int, code: str = "") -> Tracked:
        """A constant as a step of its own (no inputs), as JAX records a literal array."""
        return self._record(highprec.constant(value), "constant", (), line, code, FORWARD)

    def op(self, op, fn, *args, line, code="", phase=FORWARD, kink="") -> Tracked:
        out = fn(*args)
        inputs = tuple(
            self.ids[id(x)] for x in args if isinstance(x, Tracked) and id(x) in self.ids
        )
        return self._record(out, op, inputs, line, code or f"line {line}", phase, kink=kink)

    def graph(self, loss: Tracked, grads: dict[str, Tracked], outputs: dict) -> ShadowGraph:
        framework = self.side.removeprefix("loss_")
        return ShadowGraph(self.side, framework, loss, grads, self.steps, outputs)


def shadow(side: str, body, params=None, x=X, y=Y) -> ShadowGraph:
    """``body(tape, params, X, y)`` → loss, traced with its gradient (highprec's reverse mode),
    each gradient recorded as one backward step fed by the loss."""
    tape = Tape(side)
    params = {"w": W} if params is None else params

    def loss(p, xl, yl, xp):
        recorded = {k: tape.input(k, v) for k, v in p.items()}
        return body(tape, recorded, tape.input("X", xl), tape.input("y", yl))

    out, grads = highprec.value_and_grad(loss, params, x, y)
    outputs = {"loss": tape.steps[-1].index}  # the last op recorded is the loss
    for name, g in grads.items():
        tape._record(g, "grad", (outputs["loss"],), 0, "", BACKWARD)
        outputs[name] = tape.steps[-1].index
    return tape.graph(out, grads, outputs)


def reference(graph: ShadowGraph) -> ReferenceValues:
    """A side's exact values from its graph, as the runner makes them."""
    grads, magnitudes = {}, {"loss": Fraction(float(graph.loss.a))}
    for name, g in graph.grads.items():
        for element, v, a in zip(element_names(name, g.shape), g.v.ravel(), g.a.ravel()):
            grads[element] = highprec.to_fraction(v)
            magnitudes[element] = Fraction(float(a))
    loss = highprec.to_fraction(np.asarray(graph.loss.v).reshape(())[()])
    return ReferenceValues(loss, grads, magnitudes)


# --- programs: the port of a normalised regression, in the two frameworks' styles ---------


def variance_program(eps: float, jax_style: bool = False, eps_step: bool = False, idle=False):
    """z = X·w; normalised by √(var(z) + eps), line 6; loss = mean((ẑ − y)²)."""

    def body(t: Tape, p, x, y):
        z = t.op("matmul", highprec.matmul, x, p["w"], line=2)
        if jax_style:  # jnp.mean lowers to reduce_sum, then div
            s = t.op("reduce_sum", highprec.sum_, z, line=3)
            m = t.op("div", highprec.divide, s, float(z.shape[0]), line=3)
        else:
            m = t.op("aten.mean.default", highprec.mean, z, line=3)
        d = t.op("sub", highprec.subtract, z, m, line=4)
        dd = t.op("mul", highprec.multiply, d, d, line=5)
        v = t.op("mean", highprec.mean, dd, line=5)
        if idle:  # jnp.var's where(dof > 0, …): a select that changes nothing here
            v = t.op("select_n", highprec.multiply, v, 1.0, line=5)
        e = t.const(eps, line=6) if eps_step else eps
        ve = t.op("add", highprec.add, v, e, line=6, code=f"s = sqrt(var + {eps!r})")
        s = t.op("sqrt", highprec.sqrt, ve, line=6, code=f"s = sqrt(var + {eps!r})")
        r = t.op("div", highprec.divide, d, s, line=7)
        r = t.op("sub", highprec.subtract, r, y, line=7)
        rr = t.op("mul", highprec.multiply, r, r, line=8)
        return t.op("mean", highprec.mean, rr, line=8)

    return body


def test_identical_programs_match_everywhere():
    a = shadow("loss_torch", variance_program(1e-5))
    b = shadow("loss_jax", variance_program(1e-5))
    da, db = locate(a, b)
    # nothing parts: the walk stops at the matched loss itself, which parts by nothing
    assert da.rel == 0.0 and db.rel == 0.0


def test_a_different_eps_is_located_at_the_add_on_both_sides():
    a = shadow("loss_torch", variance_program(1e-5))
    b = shadow("loss_jax", variance_program(1e-6, jax_style=True, eps_step=True))
    da, db = locate(a, b)
    for d, side, eps in ((da, "loss_torch", 1e-5), (db, "loss_jax", 1e-6)):
        assert (d.side, d.op, d.line, d.file, d.phase) == (side, "add", 6, FILE, FORWARD)
        assert d.code == f"s = sqrt(var + {eps!r})"
    # var(z) + eps parts by (1e-5 − 1e-6)/(var + eps): the add-eps statement, not the loss
    z = X @ W
    expected = 9e-6 / (np.var(z) + 1e-5)
    assert da.rel == pytest.approx(expected, rel=1e-3)
    assert db.rel == pytest.approx(expected, rel=1e-3)


def test_a_side_only_sum_whose_quotient_matches_is_never_blamed():
    a = shadow("loss_torch", variance_program(1e-5))
    b = shadow("loss_jax", variance_program(1e-7, jax_style=True))
    reduce_sum = next(s for s in b.steps if s.op == "reduce_sum")
    da, db = locate(a, b)
    assert (da.op, db.op) == ("add", "add")
    assert db.line != reduce_sum.line


def _gelu_erf(z: Tracked) -> Tracked:
    """torch.nn.functional.gelu (erf form), exactly, with its slope for the backward pass."""
    root2 = gmpy2.sqrt(gmpy2.mpfr(2))
    v = np.frompyfunc(lambda t: t * (1 + gmpy2.erf(t / root2)) / 2, 1, 1)(z.v)
    f = z.f
    slope = 0.5 * (1 + np.vectorize(math.erf)(f / math.sqrt(2))) + f * np.exp(-f * f / 2) / (
        math.sqrt(2 * math.pi)
    )
    v = np.asarray(v, dtype=object)
    out = Tracked(v, np.abs(v.astype(np.float64)), np.abs(v.astype(np.float64)), (z,))
    out.backward = (lambda g: highprec.multiply(g, highprec.constant(slope)),)
    return out


def gelu_program(tanh_form: bool):
    """h = gelu(X·W1) on line 4 (erf form, or JAX's tanh approximation as eight ops);
    loss = mean((h·w2 − y)²)."""

    def body(t: Tape, p, x, y):
        z = t.op("matmul", highprec.matmul, x, p["W1"], line=3)
        code = "h = jax.nn.gelu(z)" if tanh_form else "h = F.gelu(z)"
        if tanh_form:
            c = math.sqrt(2 / math.pi)
            cube = t.op("integer_pow", highprec.pow_, z, 3, line=4, code=code)
            inner = t.op("mul", highprec.multiply, 0.044715, cube, line=4, code=code)
            inner = t.op("add", highprec.add, z, inner, line=4, code=code)
            inner = t.op("mul", highprec.multiply, c, inner, line=4, code=code)
            th = t.op("tanh", highprec.tanh, inner, line=4, code=code)
            one = t.op("add", highprec.add, 1.0, th, line=4, code=code)
            half = t.op("mul", highprec.multiply, 0.5, z, line=4, code=code)
            h = t.op("mul", highprec.multiply, half, one, line=4, code=code)
        else:
            h = t.op("aten.gelu.default", _gelu_erf, z, line=4, code=code)
        out = t.op("matmul", highprec.matmul, h, p["w2"], line=5)
        r = t.op("sub", highprec.subtract, out, y, line=5)
        rr = t.op("mul", highprec.multiply, r, r, line=6)
        return t.op("mean", highprec.mean, rr, line=6)

    return body


GELU_PARAMS = {"W1": RNG.normal(size=(3, 4)), "w2": RNG.normal(size=4)}


def test_tanh_against_erf_gelu_parts_at_the_activation():
    a = shadow("loss_torch", gelu_program(False), GELU_PARAMS)
    b = shadow("loss_jax", gelu_program(True), GELU_PARAMS)
    da, db = locate(a, b)
    assert (da.op, da.line, da.code) == ("aten.gelu.default", 4, "h = F.gelu(z)")
    assert (db.line, db.code) == (4, "h = jax.nn.gelu(z)")
    # the statement's gap (activation against activation, ~1e-4 of its size), not that of
    # z³ or ½z against gelu(z), which are nothing alike
    assert 1e-6 < da.rel < 1e-2 and 1e-6 < db.rel < 1e-2


def activation_program(kind: str):
    """u = X·W1 (line 2); h = act(u) (line 3); loss = mean((h·w2 − y)²) (lines 4-5)."""

    def body(t: Tape, p, x, y):
        u = t.op("matmul", highprec.matmul, x, p["W1"], line=2)
        if kind == "leaky":  # jax.nn.leaky_relu: slope 0.01
            h = t.op("mul", lambda v: highprec.maximum(v, highprec.multiply(v, 0.01)), u, line=3)
        else:  # LeakyReLU(True) (slope 1: the identity), or a data move in its place
            op = "aten.leaky_relu.default" if kind == "idle" else "aten.alias.default"
            h = t.op(op, highprec.multiply, u, 1.0, line=3)
        r = t.op(
            "sub", highprec.subtract, t.op("mv", highprec.matmul, h, p["w2"], line=4), y, line=4
        )
        return t.op("mean", highprec.mean, t.op("mul", highprec.multiply, r, r, line=5), line=5)

    return body


def test_an_op_that_did_nothing_where_the_other_side_acts_is_where_it_parts():
    """torch.nn.LeakyReLU(True) is slope 1: its value is u, which JAX also has, so the first
    unmatched torch step is the next product; the idle activation is blamed instead."""
    jax = shadow("loss_jax", activation_program("leaky"), GELU_PARAMS)
    torch = shadow("loss_torch", activation_program("idle"), GELU_PARAMS)
    dt, dj = locate(torch, jax)
    assert (dt.op, dt.line, dj.line) == ("aten.leaky_relu.default", 3, 3)
    assert dt.rel > 0.5  # u against leaky(u): the negative elements part by 99 %
    # a data move that changes nothing is no idle op: there the product parts
    moved = shadow("loss_torch", activation_program("move"), GELU_PARAMS)
    assert [(d.op, d.line) for d in locate(moved, jax)] == [("mv", 4), ("mul", 3)]


def test_an_idle_op_before_counterpart_roots_is_not_blamed():
    """jnp.var's select changes nothing, and both sides' roots (the eps adds) have one shape:
    they are counterparts and stand."""
    a = shadow("loss_torch", variance_program(1e-5))
    b = shadow("loss_jax", variance_program(1e-6, idle=True))
    assert [(d.op, d.line) for d in locate(a, b)] == [("add", 6), ("add", 6)]


# --- a kink: equal forward values, a backward op that differs --------------------------------

KINK_X = np.array([[0.5, 0.5], [1.0, -2.0], [0.25, 1.0], [-1.0, 0.5]])
TORCH_KINK = "relu at 0: torch.relu gives slope 0"
JAX_KINK = "maximum(z, 0) at a tie: jnp.maximum splits the gradient ½/½"


def relu_program(side: str) -> ShadowGraph:
    """loss = mean(relu(X·w)) with X·w exactly 0 in row 0; forward and backward recorded by
    hand, each framework with its own slope at 0."""
    torch = side == "loss_torch"
    with working_precision():
        t = Tape(side)
        w = t.input("w", highprec.leaf(np.array([1.0, -1.0])))
        x = t.input("X", highprec.leaf(KINK_X))
        t.input("y", highprec.leaf(np.zeros(len(KINK_X))))
        z = t.op("matmul", highprec.matmul, x, w, line=2)
        assert z.f[0] == 0.0
        kink = TORCH_KINK if torch else JAX_KINK
        relu_op = "aten.relu.default" if torch else "max"
        h = t.op(relu_op, highprec.maximum, z, 0.0, line=3, code="h = relu(z)", kink=kink)
        loss = t.op("mean", highprec.mean, h, line=4)
        n = len(KINK_X)
        gh = t.const(np.full(n, 1.0 / n), line=4)  # mean's backward: 1/n everywhere
        t.steps[-1].phase = BACKWARD
        slope = np.where(z.f > 0, 1.0, np.where(z.f == 0, 0.0 if torch else 0.5, 0.0))
        back_op = "aten.threshold_backward.default" if torch else "select_n"
        gz = t.op(
            back_op,
            lambda g, _h: highprec.multiply(g, highprec.constant(slope)),
            gh,
            h,
            line=3,
            code="h = relu(z)",
            phase=BACKWARD,
        )
        xt = highprec.transpose(x)
        gw = t.op(
            "dot_general", lambda _x, g: highprec.matmul(xt, g), x, gz, line=2, phase=BACKWARD
        )
        return t.graph(loss, {"w": gw}, {"loss": t.ids[id(loss)], "w": t.ids[id(gw)]})


def test_a_relu_kink_parts_in_the_backward_pass():
    a, b = relu_program("loss_torch"), relu_program("loss_jax")
    da, db = locate(a, b, "w[0]")
    assert (da.op, da.phase, da.line) == ("aten.threshold_backward.default", BACKWARD, 3)
    assert (db.op, db.phase, db.line) == ("select_n", BACKWARD, 3)


def test_an_output_missing_from_a_graph_is_refused():
    a = shadow("loss_torch", variance_program(1e-5))
    with pytest.raises(ValueError, match="no output 'v'"):
        locate(a, a, "v[0]")


# --- order independence, and speed -----------------------------------------------------------


def branching_program(eps: float):
    """Independent branches (exp, tanh, mean) with one root cause: the eps on line 6."""

    def body(t: Tape, p, x, y):
        z = t.op("matmul", highprec.matmul, x, p["w"], line=2)
        e = t.op("exp", highprec.exp, t.op("mul", highprec.multiply, z, 0.1, line=3), line=3)
        m = t.op("mean", highprec.mean, z, line=4)
        q = t.op("tanh", highprec.tanh, z, line=5)
        qq = t.op("mul", highprec.multiply, q, q, line=5)
        v = t.op("add", highprec.add, t.op("mean", highprec.mean, qq, line=6), eps, line=6)
        s = t.op("sqrt", highprec.sqrt, v, line=7)
        em = t.op("mul", highprec.multiply, e, m, line=8)
        r = t.op("sub", highprec.subtract, t.op("mul", highprec.multiply, em, s, line=9), y, line=9)
        return t.op("mean", highprec.mean, t.op("mul", highprec.multiply, r, r, line=10), line=10)

    return body


BRANCH_A = shadow("loss_torch", branching_program(1e-5))
BRANCH_B = shadow("loss_jax", branching_program(1e-4))


def reordered(graph: ShadowGraph, rnd) -> ShadowGraph:
    """The same graph with its steps in another valid evaluation order (each step still after
    its inputs), renumbered."""
    pending = {s.index: set(s.inputs) for s in graph.steps}
    order: list[int] = []
    while pending:
        ready = sorted(i for i, needs in pending.items() if not needs)
        pick = rnd.choice(ready)
        order.append(pick)
        del pending[pick]
        for needs in pending.values():
            needs.discard(pick)
    new = {old: k for k, old in enumerate(order)}
    steps = [
        dataclasses.replace(
            graph.steps[old], index=new[old], inputs=tuple(new[i] for i in graph.steps[old].inputs)
        )
        for old in order
    ]
    outputs = {k: new[v] for k, v in graph.outputs.items()}
    return dataclasses.replace(graph, steps=steps, outputs=outputs)


LOCATED = locate(BRANCH_A, BRANCH_B)


def test_the_branching_program_parts_at_its_eps():
    assert [(d.op, d.line) for d in LOCATED] == [("add", 6), ("add", 6)]


@settings(max_examples=40)
@given(st.randoms(use_true_random=False), st.randoms(use_true_random=False))
def test_evaluation_order_does_not_move_the_located_op(rnd_a, rnd_b):
    a, b = reordered(BRANCH_A, rnd_a), reordered(BRANCH_B, rnd_b)
    found = locate(a, b)
    assert [(d.op, d.line, d.phase) for d in found] == [(d.op, d.line, d.phase) for d in LOCATED]
    assert [d.rel for d in found] == pytest.approx([d.rel for d in LOCATED], rel=1e-12)


def test_hundreds_of_large_steps_match_fast():
    """A transformer-sized pair: 200 steps of 10⁵ elements, in groups of eight with equal
    norms (rolled copies); the other side holds many of them transposed or with a size-1
    axis, and parts at step 170."""
    rng = np.random.default_rng(3)
    shape, n, root = (250, 400), 200, 170
    base = rng.normal(size=shape)
    steps_a, steps_b = [], []
    for k in range(n):
        v = np.roll(base * (1 + (k // 8) / n), k, axis=0)
        inputs = (k - 1,) if k else ()
        phase, name = (INPUT, "X") if k == 0 else (FORWARD, "")
        steps_a.append(Step(k, f"op{k}", inputs, v, None, phase, name, FILE, k + 1))
        w = v if k < root else v * (1 + 1e-3)
        w = w.T if k % 3 == 1 else (w[None] if k % 3 == 2 else w)
        steps_b.append(Step(k, f"op{k}", inputs, w, None, phase, name, FILE, k + 1))
    zero = highprec.leaf(np.array(0.0))
    a = ShadowGraph("loss_torch", "torch", zero, {}, steps_a, {"loss": n - 1})
    b = ShadowGraph("loss_jax", "jax", zero, {}, steps_b, {"loss": n - 1})
    start = time.perf_counter()
    da, db = locate(a, b)
    seconds = time.perf_counter() - start
    assert (da.op, db.op) == (f"op{root}", f"op{root}")
    assert da.rel == pytest.approx(1e-3 / (1 + 1e-3), rel=1e-6)
    assert seconds < 2.0, f"{seconds:.2f} s"
