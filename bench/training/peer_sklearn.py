"""The peer side of bench/training: scikit-learn fits one model at a time on the same data
(a sample of the models, timed and extrapolated), and numpy's GEMM on the scoring shapes.

usage: peer_sklearn.py DATA_DIR --sample K --train-fraction F --c C
Prints one JSON object.
"""
import argparse
import json
import os
import time

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

ap = argparse.ArgumentParser()
ap.add_argument("data")
ap.add_argument("--sample", type=int, default=10)
ap.add_argument("--train-fraction", type=float, default=0.8)
ap.add_argument("--c", type=float, default=1.0)
a = ap.parse_args()
meta = json.load(open(os.path.join(a.data, "meta.json")))
n, d, m = meta["users"], meta["features"], meta["models"]
x = np.fromfile(os.path.join(a.data, "x.f32"), dtype="<f4").reshape(n, d)
y = np.fromfile(os.path.join(a.data, "y.u8"), dtype=np.uint8).reshape(n, m)
n_train = int(n * a.train_fraction)

# The same sample of members Spire reports on: evenly spaced indices.
sample = [int(i * m / a.sample) for i in range(a.sample)]
x64 = x.astype(np.float64)
t0 = time.perf_counter()
scaler = StandardScaler().fit(x64[:n_train])
xs_train = scaler.transform(x64[:n_train])
xs_test = scaler.transform(x64[n_train:])
t_scale = time.perf_counter() - t0
fit_times, aucs = [], []
for j in sample:
    t0 = time.perf_counter()
    model = LogisticRegression(C=a.c, solver="lbfgs", max_iter=1000).fit(xs_train, y[:n_train, j])
    fit_times.append(time.perf_counter() - t0)
    p = model.predict_proba(xs_test)[:, 1]
    aucs.append(float(roc_auc_score(y[n_train:, j], p)))

# numpy GEMM on the scoring shapes: all users × (features + intercept) by (features + 1) × models.
xa = np.hstack([x, np.ones((n, 1), dtype=np.float32)])
wa = np.random.default_rng(0).standard_normal((d + 1, m)).astype(np.float32)
gemm = []
for _ in range(3):
    t0 = time.perf_counter()
    out = xa @ wa
    gemm.append(time.perf_counter() - t0)
del out
flops = 2.0 * n * (d + 1) * m
print(json.dumps({
    "sklearn_version": sklearn.__version__,
    "numpy_version": np.__version__,
    "sample": sample,
    "scale_seconds": t_scale,
    "fit_seconds": fit_times,
    "mean_fit_seconds": float(np.mean(fit_times)),
    "extrapolated_seconds": float(np.mean(fit_times)) * m,
    "sample_aucs": aucs,
    "numpy_gemm_seconds": min(gemm),
    "numpy_gemm_gflops": flops / min(gemm) / 1e9,
}))
