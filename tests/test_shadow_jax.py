"""Shadow evaluation of JAX losses (reference.trace_jax): the exact semantics of the jaxpr JAX
differentiates — its values, its conventions at kinks, where each step came from."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import gmpy2
import numpy as np
import pytest

from gradcmp.reference import highprec as hp
from gradcmp.reference.shadow import BACKWARD, FORWARD, INPUT
from gradcmp.reference.trace_jax import shadow_jax

jax = pytest.importorskip("jax")

HEADER = "import jax\nimport jax.numpy as jnp\nimport numpy as np\nfrom jax import lax\n"


def load(tmp_path, name: str, source: str):
    """Write ``source`` as a loss file and import it: (module, path)."""
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER + textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(f"shadow_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, str(path)


def line_of(path: str, text: str) -> int:
    lines = Path(path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def jax_float64(loss_jax, params, X, y):
    """JAX's own float64 loss and gradient (jitted: one compilation, not one per op)."""
    with jax.enable_x64(True):
        value, grads = jax.jit(jax.value_and_grad(lambda p: loss_jax(p, X, y)))(params)
    return np.asarray(value), {k: np.asarray(g) for k, g in grads.items()}


def exact_gap(a: hp.Tracked, b: hp.Tracked) -> float:
    """max |a − b| / max |b|, computed on the MPFR values."""
    diff = np.asarray(a.v - b.v, dtype=object).astype(np.float64)
    scale = max(float(np.max(np.abs(b.f), initial=0.0)), 1e-300)
    return float(np.max(np.abs(diff), initial=0.0)) / scale


def beyond_bound(computed: np.ndarray, exact: hp.Tracked) -> np.ndarray:
    """Where a float64 result is further from the exact value than the running bound
    e.real·u + e.imag·η (float64: u = 2⁻⁵³, η = 2⁻¹⁰²²)."""
    computed = np.asarray(computed, dtype=np.float64)
    gap = np.frompyfunc(lambda c, v: abs(gmpy2.mpfr(float(c)) - v), 2, 1)(computed, exact.v)
    gap = np.asarray(gap, dtype=object).astype(np.float64)
    bound = exact.e.real * 2.0**-53 + exact.e.imag * 2.0**-1022
    assert np.isfinite(bound).all() and np.isfinite(exact.a).all(), "no bound to hold it to"
    return gap > bound


def check_against_jax(graph, loss_jax, params, X, y):
    """The shadow graph's loss and gradient hold the float64 JAX program within the bound."""
    value, grads = jax_float64(loss_jax, params, X, y)
    assert not beyond_bound(value, graph.loss).any(), (float(value), float(graph.loss))
    for k, g in grads.items():
        assert not beyond_bound(g, graph.grads[k]).any(), (k, g, graph.grads[k].f)


RNG = np.random.default_rng(11)
X3 = RNG.normal(size=(12, 3))

CASES = {
    "mse_linear": (
        """
        def loss_jax(p, X, y):
            return jnp.mean((X @ p["w"] + p["b"] - y) ** 2) / 2

        def loss(p, X, y, xp):
            r = X @ p["w"] + p["b"] - y
            return xp.mean(r * r) / 2
        """,
        {"w": RNG.normal(size=3), "b": np.array(0.3)},
        RNG.normal(size=12),
    ),
    "logistic_bce": (
        """
        def loss_jax(p, X, y):
            z = X @ p["w"] + p["b"]
            return jnp.mean(jax.nn.softplus(z) - y * z)

        def loss(p, X, y, xp):
            z = X @ p["w"] + p["b"]
            return xp.mean(xp.logaddexp(0.0, z) - y * z)
        """,
        {"w": RNG.normal(size=3), "b": np.array(-0.2)},
        (RNG.random(12) < 0.5).astype(float),
    ),
    "mlp_softmax_ce": (
        """
        def loss_jax(p, X, y):
            h = jnp.tanh(X @ p["W1"] + p["b1"])
            logp = jax.nn.log_softmax(h @ p["W2"] + p["b2"])
            picked = jnp.take_along_axis(logp, y.astype(int)[:, None], axis=1)
            return -jnp.mean(picked)

        def loss(p, X, y, xp):
            h = xp.tanh(X @ p["W1"] + p["b1"])
            z = h @ p["W2"] + p["b2"]
            m = xp.max(z, axis=1, keepdims=True)
            lse = m + xp.log(xp.sum(xp.exp(z - m), axis=1, keepdims=True))
            onehot = (y.astype(int)[:, None] == np.arange(3)).astype(float)
            return -xp.mean(xp.sum(onehot * (z - lse), axis=1))
        """,
        {
            "W1": RNG.normal(size=(3, 5)),
            "b1": RNG.normal(size=5),
            "W2": RNG.normal(size=(5, 3)),
            "b2": RNG.normal(size=3),
        },
        RNG.integers(0, 3, size=12).astype(float),
    ),
    "layer_norm": (
        """
        def loss_jax(p, X, y):
            h = X @ p["W"]
            mu = jnp.mean(h, axis=-1, keepdims=True)
            var = jnp.mean((h - mu) ** 2, axis=-1, keepdims=True)
            out = (h - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["beta"]
            return jnp.mean((out @ p["v"] - y) ** 2)

        def loss(p, X, y, xp):
            h = X @ p["W"]
            mu = xp.mean(h, axis=-1, keepdims=True)
            var = xp.mean((h - mu) * (h - mu), axis=-1, keepdims=True)
            out = (h - mu) / xp.sqrt(var + 1e-5) * p["g"] + p["beta"]
            r = out @ p["v"] - y
            return xp.mean(r * r)
        """,
        {
            "W": RNG.normal(size=(3, 4)),
            "g": 1 + 0.1 * RNG.normal(size=4),
            "beta": 0.1 * RNG.normal(size=4),
            "v": RNG.normal(size=4),
        },
        RNG.normal(size=12),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_shadow_matches_highprec_and_jax_float64(tmp_path, case):
    source, params, y = CASES[case]
    module, path = load(tmp_path, case, source)
    graph = shadow_jax(module.loss_jax, params, X3, y, user_file=path)
    loss, grads = hp.value_and_grad(module.loss, params, X3, y)
    assert exact_gap(graph.loss, loss) < 1e-50
    for k in params:
        assert graph.grads[k].shape == np.shape(params[k])
        assert exact_gap(graph.grads[k], grads[k]) < 1e-50, k
    check_against_jax(graph, module.loss_jax, params, X3, y)
    # Inputs first (X, y, the parameters), then forward and backward steps; outputs named.
    assert [s.name for s in graph.steps if s.phase == INPUT] == ["X", "y", *sorted(params)]
    assert {s.phase for s in graph.steps} == {INPUT, FORWARD, BACKWARD}
    assert set(graph.outputs) == {"loss", *params}
    assert graph.steps[graph.outputs["loss"]].value == pytest.approx(float(graph.loss))
    for step in graph.steps:
        assert all(i < step.index for i in step.inputs)


KINKS = """
def relu(p, X, y):
    return jnp.sum(jax.nn.relu(X @ p["w"]))

def maximum(p, X, y):
    return jnp.sum(jnp.maximum(X @ p["w"], 0.0))

def where(p, X, y):
    u = X @ p["w"]
    return jnp.sum(jnp.where(u > 0, u, 0.0))

def top(p, X, y):
    return jnp.max(p["w"] * jnp.array([1.0, 3.0, 1.5]))

def smooth(p, X, y):
    u = X @ p["w"]
    return jnp.sum(jax.nn.softplus(u)) + jax.nn.logsumexp(u * 0.0) + jnp.sum(jax.nn.gelu(u))
"""
# u = X @ w = (0, 1, −1): the first row sits exactly at the kink.
KX, KW = np.array([[2.0, 2.0], [1.0, 0.0], [0.0, 1.0]]), np.array([1.0, -1.0])


@pytest.mark.parametrize(
    "name, grad, text, code",
    [
        ("relu", [1.0, 0.0], "jax.nn.relu at 0: JAX gives slope 0", "jax.nn.relu("),
        (
            "maximum",
            [2.0, 1.0],
            "jnp.maximum at a tie: JAX splits the gradient ½/½",
            "jnp.maximum(",
        ),
        ("where", [1.0, 0.0], "jnp.where on a comparison at a tie", "jnp.where("),
    ],
)
def test_jax_conventions_at_kinks(tmp_path, name, grad, text, code):
    module, path = load(tmp_path, "kinks", KINKS)
    loss_jax = getattr(module, name)
    graph = shadow_jax(loss_jax, {"w": KW}, KX, np.zeros(3), user_file=path)
    assert list(graph.grads["w"].f) == grad
    assert list(jax_float64(loss_jax, {"w": KW}, KX, np.zeros(3))[1]["w"]) == grad
    (kink,) = graph.kinks()
    assert kink.kink.startswith(text) and "(1 of 3 elements)" in kink.kink
    assert kink.phase == FORWARD and kink.line == line_of(path, code) and code in kink.code


def test_max_ties_split_and_smooth_functions_have_no_kinks(tmp_path):
    module, path = load(tmp_path, "kinks", KINKS)
    w = np.array([3.0, 1.0, 2.0])  # w · (1, 3, 1.5) = (3, 3, 3): a three-way tie
    graph = shadow_jax(module.top, {"w": w}, KX, np.zeros(3), user_file=path)
    assert graph.grads["w"].f == pytest.approx([1 / 3, 1.0, 0.5], rel=1e-15)
    (kink,) = graph.kinks()
    assert kink.op == "reduce_max" and kink.kink.startswith("jnp.max at a tie")
    # softplus (max inside its custom rule), logsumexp of equal values (a stop_gradient max)
    # and the ½/½ of gelu's jvp: all at their ties, none a kink of the loss.
    graph = shadow_jax(module.smooth, {"w": KW}, KX, np.zeros(3), user_file=path)
    assert graph.kinks() == []
    check_against_jax(graph, module.smooth, {"w": KW}, KX, np.zeros(3))


def test_steps_carry_file_line_and_code(tmp_path):
    module, path = load(
        tmp_path,
        "gelu",
        """
        def loss_jax(p, X, y):
            h = X @ p["W"]
            a = jax.nn.gelu(h, approximate=True)
            return jnp.mean((a.sum(axis=1) - y) ** 2)
        """,
    )
    params, y = {"W": RNG.normal(size=(3, 4))}, RNG.normal(size=12)
    graph = shadow_jax(module.loss_jax, params, X3, y, user_file=path)
    tanh = [s for s in graph.steps if s.op == "tanh"]
    assert len(tanh) == 1 and tanh[0].phase == FORWARD
    line = line_of(path, "jax.nn.gelu")
    assert (tanh[0].file, tanh[0].line) == (path, line)
    assert tanh[0].code == "a = jax.nn.gelu(h, approximate=True)"
    backward = [s for s in graph.steps if s.phase == BACKWARD]
    assert backward and all(s.file == path for s in backward)
    assert {s.line for s in backward} >= {line, line + 1}
    check_against_jax(graph, module.loss_jax, params, X3, y)


def test_nan_names_the_first_non_finite_step(tmp_path):
    module, path = load(
        tmp_path,
        "nan",
        """
        def loss_jax(p, X, y):
            return jnp.sum(p["w"] * jnp.log(p["w"]))
        """,
    )
    with pytest.raises(hp.NotDifferentiable) as info:
        shadow_jax(module.loss_jax, {"w": np.array([0.0, 1.0])}, X3, y=np.zeros(12), user_file=path)
    message = str(info.value)
    assert message.startswith("loss_jax: log at ") and "log of 0" in message
    assert f"{path}:{line_of(path, 'jnp.log')}" in message and "jnp.log(p[" in message


def test_masked_infinity_is_evaluated_as_jax_does(tmp_path):
    # −inf where the mask is off, exp(−inf) = 0 in the softmax: finite, as in JAX.
    module, path = load(
        tmp_path,
        "masked",
        """
        def loss_jax(p, X, y):
            u = jnp.where(X[:, 0] > 0, X @ p["w"], -jnp.inf)
            return jax.nn.logsumexp(u) + jnp.sum(jax.nn.softmax(u) * y)
        """,
    )
    w, y = RNG.normal(size=3), RNG.normal(size=12)
    graph = shadow_jax(module.loss_jax, {"w": w}, X3, y, user_file=path)
    assert any(np.isinf(s.value).any() for s in graph.steps if s.op == "select_n")
    check_against_jax(graph, module.loss_jax, {"w": w}, X3, y)


def test_unsupported_primitive_is_named(tmp_path):
    module, path = load(
        tmp_path,
        "digamma",
        """
        def loss_jax(p, X, y):
            return jnp.sum(jax.scipy.special.digamma(p["w"] + 2.0))
        """,
    )
    with pytest.raises(hp.UnsupportedOperation, match=r"^jax primitive digamma at ") as info:
        shadow_jax(module.loss_jax, {"w": np.ones(2)}, X3, np.zeros(12), user_file=path)
    assert str(info.value).endswith(f"{path}:{line_of(path, 'digamma(')}")


ZOO = """
@jax.custom_vjp
def scaled_sin(x):
    return jnp.sin(x)

scaled_sin.defvjp(lambda x: (jnp.sin(x), jnp.cos(x)), lambda c, g: (2.0 * g * c,))

def loss_jax(p, X, y):
    w, A = p["w"], p["A"]
    u = X @ w                                                    # 12
    s = jax.nn.sigmoid(u) + jnp.sin(u) * jnp.cos(u) + jnp.arctan2(u, 1.5) + jnp.exp2(u / 4)
    s = s + jax.scipy.special.erf(u) + jnp.arcsinh(u) + jnp.cbrt(u + 5.0) + lax.rsqrt(u * u + 1)
    s = s + jnp.power(jnp.abs(u) + 1.0, 1.5) + u ** 3 + 1.0 / (u * u + 1) + jnp.expm1(u / 8)
    s = s + jax.scipy.special.erfinv(jnp.tanh(u) * 0.5) + jnp.clip(u, -0.5, 0.5)
    s = jnp.concatenate([s[:6], jnp.sort(s[6:])]) + jnp.cumsum(s)[::-1] * 0.01
    s = jnp.pad(s, (1, 2), constant_values=0.5)[1:-2] + jnp.roll(s, 3)
    g = s.reshape(3, 4)
    g = g + jnp.tile(jnp.stack(jnp.unstack(g, axis=1), axis=1)[:, :2], (1, 2)) * 0.1
    att = jax.nn.softmax(jnp.einsum("ij,kj->ik", g, A) / 2.0, axis=-1)   # 3 x 5
    mixed = jnp.einsum("bi,bj->bij", att, att[:, ::-1]).sum(axis=0)        # batch dims
    picked = g[:, jnp.array([0, 2])].sum() + jnp.take(g, jnp.array([1, 1, 3]), axis=1).sum()
    hist = jnp.zeros(5).at[jnp.array([0, 0, 4])].add(u[:3])            # scatter-add, repeats
    dyn = lax.dynamic_slice(g, (1, 1), (2, 2)).sum()
    dyn = dyn + lax.dynamic_update_slice(g, g[:1] * 2, (2, 0)).sum()
    carry, ys = lax.scan(lambda c, r: (c * 0.5 + jnp.tanh(r), c), jnp.zeros(4), g)
    branch = lax.cond(u.sum() > 0, lambda a: a * 2.0, lambda a: a * 3.0, carry)
    prod = jnp.prod(g[0] / 4 + 1) + jnp.var(s) + jnp.linalg.norm(w) + jnp.min(s) + jnp.max(A)
    total = jnp.sum(mixed) + picked + jnp.sum(hist ** 2) + dyn + ys.sum() + branch.sum() + prod
    halved = lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 0.5), (0, X[0, 0]))[1]
    loop = lax.fori_loop(0, 3, lambda i, c: c * g[i, 0] + 1.0, 1.0) + g[jnp.argmax(g[:, 0])].sum()
    steps = jnp.fmod(u, 0.7) + jnp.round(u) + jnp.floor(u) + jnp.sign(u) + scaled_sin(u)
    placed = jnp.zeros(5).at[jnp.array([1, 3])].set(X[:2, 0])  # data: a plain float scatter
    total = total + halved * loop + jnp.sum(steps) + jnp.sum(placed * u[:5])
    return total + jnp.mean((s - y) ** 2) + jnp.sum(jax.checkpoint(jnp.sinh)(w))
"""


def test_many_primitives_hold_jax_float64_within_the_bound(tmp_path):
    module, path = load(tmp_path, "zoo", ZOO)
    params = {"w": 0.5 * RNG.normal(size=3), "A": RNG.normal(size=(5, 4))}
    y = RNG.normal(size=12)
    graph = shadow_jax(module.loss_jax, params, X3, y, user_file=path)
    check_against_jax(graph, module.loss_jax, params, X3, y)
    ops = {s.op for s in graph.steps}
    assert {"erf_inv", "scan", "sort", "scatter-add", "gather", "cumsum", "atan2"} <= ops
    assert {"dynamic_update_slice", "pad", "concatenate", "dot_general", "rsqrt"} <= ops
    assert {"rem", "round", "floor", "sign", "scatter", "stack", "unstack", "tile"} <= ops


def test_attention_block_with_batched_products(tmp_path):
    module, path = load(
        tmp_path,
        "block",
        """
        def loss_jax(p, X, y):
            T, heads, d = X.shape[0], 2, 4
            q, k, v = (jnp.transpose((X @ p[n]).reshape(T, heads, d), (1, 0, 2)) for n in "qkv")
            scores = jnp.einsum("htd,hsd->hts", q, k) / jnp.sqrt(d * 1.0)
            mask = jnp.tril(jnp.ones((T, T), dtype=bool))
            att = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
            out = jnp.einsum("hts,hsd->thd", att, v).reshape(T, heads * d) @ p["o"]
            mu = out.mean(-1, keepdims=True)
            h = (out - mu) * lax.rsqrt(((out - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
            h = jax.nn.gelu(h @ p["up"]) @ p["down"]
            return jnp.mean((h[:, 0] - y) ** 2)
        """,
    )
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6, 8))
    params = {n: rng.normal(size=(8, 8)) / 3 for n in ("q", "k", "v", "o")}
    params |= {"up": rng.normal(size=(8, 16)) / 3, "down": rng.normal(size=(16, 8)) / 4}
    y = rng.normal(size=6)
    graph = shadow_jax(module.loss_jax, params, X, y, user_file=path)
    check_against_jax(graph, module.loss_jax, params, X, y)
    assert graph.kinks() == []
