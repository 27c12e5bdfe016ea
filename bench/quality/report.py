"""Prints the quality benchmark's table (Markdown) from Spire's and the peers' results, with
the verdict "Spire mean ≥ peer mean − 0.005" per row; exits 1 when a row fails.

usage: report.py DATA_DIR OUT_DIR
"""

import json
import os
import sys

import numpy as np

from configs import CONFIGS

TOLERANCE = 0.005


def main():
    data, out = sys.argv[1], sys.argv[2]
    meta = json.load(open(os.path.join(data, "meta.json")))
    peer = json.load(open(os.path.join(out, "peer.json")))
    peer_names = {"sklearn": "scikit-learn", "lightgbm": "LightGBM"}
    print("| dataset | configuration | Spire AUC | peer | peer AUC | Spire − peer | Spire s | peer s | verdict |")
    print("|---|---|---:|---|---:|---:|---:|---:|---|")
    failed = checked = 0
    for name, m in meta.items():
        for c in CONFIGS:
            spire_aucs, spire_seconds = [], 0.0
            for seed in range(len(m["fold_columns"])):
                path = os.path.join(out, f"spire-{name}-{c['name']}-{seed}.json")
                r = json.load(open(path))
                auc = next(x for x in r["cv"]["metrics"] if x["name"] == "roc_auc")
                spire_aucs.append(auc["values"])
                spire_seconds += r["seconds"]
            p = peer[name][c["name"]]
            s_mean, p_mean = float(np.mean(spire_aucs)), float(np.mean(p["aucs"]))
            s_seeds = " / ".join(f"{np.mean(a):.4f}" for a in spire_aucs)
            p_seeds = " / ".join(f"{np.mean(a):.4f}" for a in p["aucs"])
            ok = s_mean >= p_mean - TOLERANCE
            judged = c.get("verdict", True)
            verdict = ("ok" if ok else "FAIL") if judged else "(reference: no verdict)"
            checked += judged
            failed += judged and not ok
            print(
                f"| {name} | {c['title']} | **{s_mean:.4f}** ({s_seeds}) | "
                f"{peer_names[c['peer']]} | **{p_mean:.4f}** ({p_seeds}) | {s_mean - p_mean:+.4f} | "
                f"{spire_seconds:.1f} | {p['seconds']:.1f} | {verdict} |"
            )
    n = checked
    print()
    print(
        f"verdict (Spire mean AUC ≥ peer mean AUC − {TOLERANCE}): {n - failed}/{n} rows ok"
        + ("" if not failed else f", {failed} FAILED")
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
