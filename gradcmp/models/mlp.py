"""A multilayer perceptron for regression: one or two hidden tanh layers, squared error.

    h1 = tanh(b1 + X·W1),  [h2 = tanh(b2 + h1·W2)],  f = b_out + h·w_out
    L = mean((f − y)²) / 2

The hidden sizes are options (``--hidden 16,8``, ``hidden=(16, 8)``); the initial weights
are drawn from a seeded generator (``--seed``/``seed=``, default 0): normal with variance
1/fan-in, biases 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import Given, UsageError
from .base import DataShape, Model, ScalarMath

DEFAULT_HIDDEN = (8,)


def _sizes(shape: DataShape, hidden: tuple[int, ...]) -> list[int]:
    return [shape.features, *hidden]


def param_shapes_for(hidden: tuple[int, ...]):
    def param_shapes(shape: DataShape) -> dict[str, tuple[int, ...]]:
        sizes = _sizes(shape, hidden)
        shapes: dict[str, tuple[int, ...]] = {}
        for layer, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:]), start=1):
            shapes[f"W{layer}"] = (fan_in, fan_out)
            shapes[f"b{layer}"] = (fan_out,)
        shapes["w_out"] = (sizes[-1],)
        shapes["b_out"] = ()
        return shapes

    return param_shapes


def initial_for(hidden: tuple[int, ...], seed: int):
    def initial(shape: DataShape) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        values = {}
        for name, s in param_shapes_for(hidden)(shape).items():
            fan_in = s[0] if s else 1
            is_bias = name.startswith("b")
            values[name] = np.zeros(s) if is_bias else rng.normal(size=s) / np.sqrt(fan_in)
        return values

    return initial


def loss_for(layers: int):
    def loss(params, X, y, xp):
        h = X
        for layer in range(1, layers + 1):
            h = xp.tanh(h @ params[f"W{layer}"] + params[f"b{layer}"])
        residual = h @ params["w_out"] + params["b_out"] - y
        return xp.mean(residual * residual) / 2

    return loss


def native_for(layers: int):
    def native(params, rows, target, scalar):
        """Backpropagation by hand: dL/df_i = r_i / n; through tanh, dh = (1 − h²)·upstream."""
        m = ScalarMath(scalar)
        zero, one = scalar(0), scalar(1)
        weights, biases = [], []
        for layer in range(1, layers + 1):
            b = params[f"b{layer}"]
            flat = params[f"W{layer}"]
            fan_out = len(b)
            weights.append(
                [flat[i * fan_out : (i + 1) * fan_out] for i in range(len(flat) // fan_out)]
            )
            biases.append(b)
        w_out, (b_out,) = params["w_out"], params["b_out"]
        grad_W = [[[zero] * len(row) for row in W] for W in weights]
        grad_b = [[zero] * len(b) for b in biases]
        grad_w_out, grad_b_out = [zero] * len(w_out), zero
        loss_sum = zero
        for x, y in zip(rows, target):
            activations = [list(x)]  # forward: h0 = x, h1, …
            for W, b in zip(weights, biases):
                h_in = activations[-1]
                h = []
                for k in range(len(b)):
                    pre = b[k]
                    for i in range(len(h_in)):
                        pre = pre + h_in[i] * W[i][k]
                    h.append(m.tanh(pre))
                activations.append(h)
            f = b_out
            for k in range(len(w_out)):
                f = f + activations[-1][k] * w_out[k]
            r = f - y
            loss_sum = loss_sum + r * r
            # backward: r is dL_i/df (the 1/n comes at the end)
            grad_b_out = grad_b_out + r
            upstream = []
            for k in range(len(w_out)):
                grad_w_out[k] = grad_w_out[k] + r * activations[-1][k]
                upstream.append(r * w_out[k])
            for layer in reversed(range(layers)):
                h, h_in = activations[layer + 1], activations[layer]
                delta = [upstream[k] * (one - h[k] * h[k]) for k in range(len(h))]  # tanh'
                for k in range(len(delta)):
                    grad_b[layer][k] = grad_b[layer][k] + delta[k]
                    for i in range(len(h_in)):
                        grad_W[layer][i][k] = grad_W[layer][i][k] + h_in[i] * delta[k]
                upstream = [zero] * len(h_in)
                for i in range(len(h_in)):
                    for k in range(len(delta)):
                        upstream[i] = upstream[i] + weights[layer][i][k] * delta[k]
        inv_n = one / scalar(len(target))
        grads = {}
        for layer in range(layers):
            grads[f"W{layer + 1}"] = [g * inv_n for row in grad_W[layer] for g in row]
            grads[f"b{layer + 1}"] = [g * inv_n for g in grad_b[layer]]
        grads["w_out"] = [g * inv_n for g in grad_w_out]
        grads["b_out"] = [grad_b_out * inv_n]
        return loss_sum * inv_n / scalar(2), grads

    return native


def numpy_grad_for(layers: int):
    def numpy_grad(params, X, y):
        activations = [X]
        for layer in range(1, layers + 1):
            activations.append(np.tanh(activations[-1] @ params[f"W{layer}"] + params[f"b{layer}"]))
        r = activations[-1] @ params["w_out"] + params["b_out"] - y
        inv_n = X.dtype.type(1) / X.dtype.type(len(y))
        grads = {"w_out": activations[-1].T @ r * inv_n, "b_out": r.sum() * inv_n}
        upstream = np.outer(r, params["w_out"])
        for layer in range(layers, 0, -1):
            delta = upstream * (1 - activations[layer] * activations[layer])  # tanh'
            grads[f"W{layer}"] = activations[layer - 1].T @ delta * inv_n
            grads[f"b{layer}"] = delta.sum(axis=0) * inv_n
            upstream = delta @ params[f"W{layer}"].T
        return r @ r * inv_n / 2, grads

    return numpy_grad


def make(hidden: tuple[int, ...] = DEFAULT_HIDDEN, seed: int = 0) -> Model:
    """An MLP with these hidden sizes (one or two layers) and initial-weight seed."""
    hidden = tuple(int(h) for h in hidden)
    if not 1 <= len(hidden) <= 2 or any(h < 1 for h in hidden):
        problem = (
            "has one or two hidden layers"
            if not 1 <= len(hidden) <= 2
            else ("needs layer sizes of at least 1")
        )
        raise UsageError(
            (Given("hidden", ",".join(map(str, hidden)), hidden), f": the MLP {problem}"),
            hint=("write ", Given("hidden", "16", (16,)), " or ", Given("hidden", "16,8", (16, 8))),
        )
    return Model(
        name="mlp",
        formula="L = mean((b_out + tanh(…tanh(b1 + X·W1)…)·w_out − y)²) / 2",
        description=(
            f"multilayer perceptron, tanh hidden layers {list(hidden)}, squared error; "
            f"weights seeded ({seed})"
        ),
        param_shapes=param_shapes_for(hidden),
        loss=loss_for(len(hidden)),
        native=native_for(len(hidden)),
        numpy_grad=numpy_grad_for(len(hidden)),
        initial=initial_for(hidden, seed),
        recipe=("mlp", hidden, seed),
    )


MODEL = make()


def configure(hidden: tuple[int, ...] | None, seed: int | None) -> Model:
    """The MLP for the user's hidden sizes and seed (defaults: one layer of 8, seed 0)."""
    return make(hidden or DEFAULT_HIDDEN, 0 if seed is None else seed)


__all__ = ["MODEL", "configure", "make"]
