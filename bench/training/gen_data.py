"""Writes the training benchmark's data: N users × D features (f32) and M label columns (u8)
drawn from M random sparse logistic models, as raw little-endian files plus meta.json.

usage: gen_data.py OUT_DIR [--users N] [--features D] [--models M] [--seed S]
"""
import argparse
import json
import os

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--users", type=int, default=1_000_000)
ap.add_argument("--features", type=int, default=64)
ap.add_argument("--models", type=int, default=1000)
ap.add_argument("--seed", type=int, default=7)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)
rng = np.random.default_rng(a.seed)
n, d, m = a.users, a.features, a.models

# Each model depends on 8 random features; intercepts give base rates of roughly 2–25 %.
w = np.zeros((d, m), dtype=np.float32)
for j in range(m):
    idx = rng.choice(d, size=8, replace=False)
    w[idx, j] = rng.normal(0.0, 0.5, size=8)
b = rng.uniform(-3.5, -1.0, size=m).astype(np.float32)
# Features: correlated, with varied scales and offsets like real counts and rates.
scale = rng.uniform(0.5, 20.0, size=d).astype(np.float32)
offset = rng.uniform(-5.0, 50.0, size=d).astype(np.float32)

with open(os.path.join(a.out, "x.f32"), "wb") as fx, open(os.path.join(a.out, "y.u8"), "wb") as fy:
    step = 100_000
    for start in range(0, n, step):
        c = min(step, n - start)
        shared = rng.standard_normal((c, 1), dtype=np.float32)
        z = rng.standard_normal((c, d), dtype=np.float32) + 0.5 * shared
        logits = z @ w + b
        y = (rng.random((c, m), dtype=np.float32) < 1.0 / (1.0 + np.exp(-logits))).astype(np.uint8)
        (z * scale + offset).astype("<f4").tofile(fx)
        y.tofile(fy)

json.dump({"users": n, "features": d, "models": m, "seed": a.seed}, open(os.path.join(a.out, "meta.json"), "w"))
print(f"wrote {n} users × {d} features and {m} label columns to {a.out}")
