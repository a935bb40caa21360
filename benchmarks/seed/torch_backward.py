"""Seed tutorial, way (c): loss.backward(), then each parameter's .grad.

Reproduces one of the seed tutorial's four scripts for the startup benchmark
(benchmarks/startup.py). 1-D linear regression on data/xy.csv, loss = mean((θ0 + θ1·x − y)²) / 2
at θ0 = θ1 = 0, in float32.
"""

from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "data" / "xy.csv"

xy = np.loadtxt(DATA, delimiter=",", skiprows=1, dtype=np.float32)
x, y = torch.from_numpy(xy[:, 0]), torch.from_numpy(xy[:, 1])

theta0 = torch.zeros((), dtype=torch.float32, requires_grad=True)
theta1 = torch.zeros((), dtype=torch.float32, requires_grad=True)
residual = theta0 + theta1 * x - y
loss = torch.mean(residual * residual) / 2
loss.backward()

print("loss:", loss.item())
print("grad:", theta0.grad.item(), theta1.grad.item())
