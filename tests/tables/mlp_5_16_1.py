"""A 5-16-1 tanh MLP, mean squared error."""

import numpy as np

_rng = np.random.default_rng(0)
PARAMS = {
    "w1": _rng.normal(0, 0.5, (5, 16)).round(3),
    "b1": np.zeros(16),
    "w2": _rng.normal(0, 0.5, (16,)).round(3),
    "b2": 0.0,
}


def loss(params, X, y, xp):
    hidden = xp.tanh(X @ params["w1"] + params["b1"])
    prediction = hidden @ params["w2"] + params["b2"]
    return xp.mean((prediction - y) ** 2)
