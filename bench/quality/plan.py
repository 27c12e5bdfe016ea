"""Prints the Spire runs of the quality benchmark, one per line, tab-separated:
dataset, config, seed, output file, then the `spire --json ml evaluate` arguments.

usage: plan.py DATA_DIR OUT_DIR FOLDS
"""

import json
import os
import sys

from configs import CONFIGS, spire_params_text


def main():
    data, out, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
    meta = json.load(open(os.path.join(data, "meta.json")))
    for name, m in meta.items():
        n_train = m["rows"] - m["rows"] // k
        for c in CONFIGS:
            params = dict(c["spire"])
            if "l2_from_c" in params:
                # scikit-learn's C for n_train rows: l2 = 1 / (C · n_train).
                params = {"l2": 1.0 / (params.pop("l2_from_c") * n_train)}
            for seed, fold in enumerate(m["fold_columns"]):
                others = [f for f in m["fold_columns"] if f != fold]
                args = [
                    "--data", m["csv"], "--label", m["label"], "--positive", m["positive"],
                    "--fold-column", fold, "--drop", ",".join(others),
                    "--algorithm", c["algorithm"],
                ]
                text = spire_params_text(params)
                if text:
                    args += ["--params", text]
                result = os.path.join(out, f"spire-{name}-{c['name']}-{seed}.json")
                print("\t".join([name, c["name"], str(seed), result] + args))


if __name__ == "__main__":
    main()
