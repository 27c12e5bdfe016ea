"""The Python peers of the quality benchmark: scikit-learn's LogisticRegression and LightGBM
on the same folds and the same encoding as `spire ml evaluate`.

usage: peer.py DATA_DIR OUT_JSON [--threads N]

Encoding (Spire's `PreprocessParams::default()`, fitted on each fold's training rows):
- a column is numeric when every non-empty value parses as a number (DataFusion's CSV type
  inference; TRUE/FALSE columns are booleans, so categories); missing numbers are filled
  with the training mean, plus a `<col>__missing` 0/1 column when the training rows had any;
- any other column is one-hot encoded over its 50 most frequent training categories (ties
  by name); rarer, unseen and missing values are all zeros;
- the label and the fold columns are not features.
Logistic regression standardizes the encoded columns (StandardScaler on the training rows;
Spire's Standardizer is the same: population std, constant columns scale 1), then fits
`LogisticRegression(C, solver="newton-cholesky")`. LightGBM fits the encoded matrix as is.
Output: {dataset: {config: {"aucs": [[AUC per fold] per seed], "seconds": s}}}.
"""

import argparse
import csv
import json
import math
import os
import time

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from configs import CONFIGS

MAX_CATEGORIES = 50


def is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def read(meta):
    with open(meta["csv"], newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    cols = {h: [r[i] for r in body] for i, h in enumerate(header)}
    y = np.array([v == meta["positive"] for v in cols.pop(meta["label"])])
    folds = [np.array([int(v) for v in cols.pop(f)]) for f in meta["fold_columns"]]
    features = []
    for name, values in cols.items():
        numeric = all(v == "" or is_number(v) for v in values)
        if numeric:
            x = np.array([float(v) if v != "" else math.nan for v in values])
        else:
            x = np.array([v if v != "" else None for v in values], dtype=object)
        features.append((name, numeric, x))
    return features, y, folds


def encode(features, train, test):
    """Spire's preprocessor, fitted on `train` rows, applied to both sides."""
    out_train, out_test = [], []
    for name, numeric, x in features:
        xt, xs = x[train], x[test]
        if numeric:
            present = ~np.isnan(xt)
            fill = xt[present].mean() if present.any() else 0.0
            out_train.append(np.where(np.isnan(xt), fill, xt))
            out_test.append(np.where(np.isnan(xs), fill, xs))
            if not present.all():
                out_train.append(np.isnan(xt).astype(float))
                out_test.append(np.isnan(xs).astype(float))
        else:
            counts = {}
            for v in xt:
                if v is not None:
                    counts[v] = counts.get(v, 0) + 1
            cats = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
            for c in cats:
                out_train.append((xt == c).astype(float))
                out_test.append((xs == c).astype(float))
    return np.column_stack(out_train), np.column_stack(out_test)


def fit_predict(config, x_train, y_train, x_test, threads):
    p = config["peer_params"]
    if config["peer"] == "sklearn":
        scaler = StandardScaler().fit(x_train)
        c = p["C"] if "C" in p else 1.0 / (p["l2"] * len(y_train))
        model = LogisticRegression(C=c, solver="newton-cholesky", max_iter=1000, tol=1e-8)
        model.fit(scaler.transform(x_train), y_train)
        return model.predict_proba(scaler.transform(x_test))[:, 1]
    import lightgbm

    model = lightgbm.LGBMClassifier(
        **p, n_jobs=threads, random_state=0, deterministic=True, verbose=-1
    )
    model.fit(x_train, y_train)
    return model.predict_proba(x_test)[:, 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    meta = json.load(open(os.path.join(a.data, "meta.json")))
    results = {}
    for name, m in meta.items():
        features, y, folds = read(m)
        results[name] = {}
        for config in CONFIGS:
            started = time.perf_counter()
            aucs = []
            for assignment in folds:
                per_fold = []
                for k in range(assignment.max() + 1):
                    test = assignment == k
                    train = ~test
                    x_train, x_test = encode(features, train, test)
                    p = fit_predict(config, x_train, y[train], x_test, a.threads)
                    per_fold.append(float(roc_auc_score(y[test], p)))
                aucs.append(per_fold)
            results[name][config["name"]] = {
                "aucs": aucs,
                "seconds": time.perf_counter() - started,
            }
            mean = np.mean(aucs)
            print(f"[peer] {name} {config['name']}: mean AUC {mean:.4f}", flush=True)
    with open(a.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
