"""Writes the quality benchmark's tables: one CSV per dataset with fold columns.

usage: prepare.py SHARED_DATA_DIR OUT_DIR --seeds N --folds K

- bank_marketing: `bank-full.csv` (';'-separated, 45,211 rows, label `y`), without
  `duration` (only known after the call: it leaks the label; see its SOURCE.txt).
- online_shoppers_intention: `online_shoppers_intention.csv` (12,330 rows, label `Revenue`).

Each output CSV keeps the remaining columns as they are (text stays text) and adds
`fold_0 … fold_{N-1}`: scikit-learn's `StratifiedKFold(K, shuffle=True, random_state=seed)`
fold (0..K-1) of every row for seed 0..N-1. Spire reads them with `--fold-column`, the Python
peers with the same column, so both sides test on identical rows. `meta.json` lists the
datasets, their label and fold columns.
"""

import argparse
import csv
import json
import os

import numpy as np
from sklearn.model_selection import StratifiedKFold

DATASETS = {
    "bank_marketing": {
        "file": "bank_marketing/bank-full.csv",
        "delimiter": ";",
        "label": "y",
        "positive": "yes",
        "drop": ["duration"],
    },
    "online_shoppers_intention": {
        "file": "online_shoppers_intention/online_shoppers_intention.csv",
        "delimiter": ",",
        "label": "Revenue",
        "positive": "TRUE",
        "drop": [],
    },
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("out")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--folds", type=int, default=5)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    meta = {}
    for name, d in DATASETS.items():
        with open(os.path.join(a.shared, d["file"]), newline="") as f:
            rows = list(csv.reader(f, delimiter=d["delimiter"]))
        header, body = rows[0], rows[1:]
        keep = [i for i, c in enumerate(header) if c not in d["drop"]]
        label_at = header.index(d["label"])
        y = np.array([r[label_at] == d["positive"] for r in body])
        folds = []
        for seed in range(a.seeds):
            assignment = np.empty(len(body), dtype=int)
            skf = StratifiedKFold(n_splits=a.folds, shuffle=True, random_state=seed)
            for k, (_, test) in enumerate(skf.split(np.zeros(len(body)), y)):
                assignment[test] = k
            folds.append(assignment)
        fold_cols = [f"fold_{s}" for s in range(a.seeds)]
        path = os.path.join(a.out, f"{name}.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([header[i] for i in keep] + fold_cols)
            for r, row in enumerate(body):
                w.writerow([row[i] for i in keep] + [int(fc[r]) for fc in folds])
        meta[name] = {
            "csv": path,
            "label": d["label"],
            "positive": d["positive"],
            "rows": len(body),
            "positives": int(y.sum()),
            "fold_columns": fold_cols,
            "dropped": d["drop"],
        }
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)


if __name__ == "__main__":
    main()
