"""A minimal keep-alive HTTP client for the MLflow REST API (requests.Session, no MLflow
client code), to measure a tracking server beyond the `mlflow` client's own per-call cost.

Usage: python raw_client.py URL NAME OUT.json [--calls N] [--batches N]

log_metric: N POSTs of /api/2.0/mlflow/runs/log-metric one after another (calls/s);
log_batch: N POSTs of /api/2.0/mlflow/runs/log-batch with 1,000 metrics (median ms).
Against a trivial server (trivial_server.py) the run id is made up.
"""

import argparse
import json
import statistics
import time

import requests


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("name")
    ap.add_argument("out")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--batches", type=int, default=20)
    args = ap.parse_args()
    s = requests.Session()
    api = args.url + "/api/2.0/mlflow"
    if args.name == "trivial":
        run_id = "0" * 32
    else:
        exp = s.post(f"{api}/experiments/create", json={"name": f"raw-{time.time()}"}).json()
        run = s.post(f"{api}/runs/create", json={"experiment_id": exp["experiment_id"]}).json()
        run_id = run["run"]["info"]["run_id"]
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for i in range(args.calls):
        r = s.post(
            f"{api}/runs/log-metric",
            json={"run_id": run_id, "key": "loss", "value": 1.0 / (i + 1), "timestamp": now, "step": i},
        )
        r.raise_for_status()
    rate = args.calls / (time.perf_counter() - started)
    times = []
    for b in range(args.batches):
        metrics = [
            {"key": f"m{i % 10}", "value": float(i), "timestamp": now, "step": b * 1000 + i}
            for i in range(1000)
        ]
        t = time.perf_counter()
        s.post(f"{api}/runs/log-batch", json={"run_id": run_id, "metrics": metrics}).raise_for_status()
        times.append((time.perf_counter() - t) * 1000)
    out = {"server": args.name, "log_metric_per_s": rate, "log_batch_ms": statistics.median(times)}
    json.dump(out, open(args.out, "w"), indent=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
