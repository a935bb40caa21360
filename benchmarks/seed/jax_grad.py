"""Seed tutorial, way (d): jax.value_and_grad.

Reproduces one of the seed tutorial's four scripts for the startup benchmark
(benchmarks/startup.py). 1-D linear regression on data/xy.csv, loss = mean((θ0 + θ1·x − y)²) / 2
at θ0 = θ1 = 0, in float32 (JAX's default).
"""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

DATA = Path(__file__).resolve().parents[2] / "data" / "xy.csv"

xy = np.loadtxt(DATA, delimiter=",", skiprows=1, dtype=np.float32)
x, y = jnp.asarray(xy[:, 0]), jnp.asarray(xy[:, 1])


def loss_fn(theta0, theta1):
    residual = theta0 + theta1 * x - y
    return jnp.mean(residual * residual) / 2


loss, (grad0, grad1) = jax.value_and_grad(loss_fn, argnums=(0, 1))(jnp.float32(0), jnp.float32(0))

print("loss:", float(loss))
print("grad:", float(grad0), float(grad1))
