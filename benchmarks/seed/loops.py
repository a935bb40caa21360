"""Seed tutorial, way (a): the gradient derived by hand, computed in plain Python loops.

Reproduces one of the seed tutorial's four scripts for the startup benchmark
(benchmarks/startup.py). 1-D linear regression on data/xy.csv, loss = mean((θ0 + θ1·x − y)²) / 2
at θ0 = θ1 = 0, in float32 (numpy float32 scalars, one operation at a time).
"""

import csv
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "data" / "xy.csv"

with open(DATA, newline="") as f:
    rows = list(csv.DictReader(f))
x = [np.float32(row["x"]) for row in rows]
y = [np.float32(row["y"]) for row in rows]
n = np.float32(len(rows))

theta0, theta1 = np.float32(0), np.float32(0)
loss, grad0, grad1 = np.float32(0), np.float32(0), np.float32(0)
for xi, yi in zip(x, y):
    r = theta0 + theta1 * xi - yi
    loss += r * r
    grad0 += r  # dL/dθ0 = mean(r)
    grad1 += r * xi  # dL/dθ1 = mean(r·x)
loss = loss / n / np.float32(2)
grad0, grad1 = grad0 / n, grad1 / n

print("loss:", float(loss))
print("grad:", float(grad0), float(grad1))
