"""Registry benchmark client: the real `mlflow` client against one tracking server.

Usage: python bench.py URL NAME OUT.json [--calls N] [--batches N] [--runs N] [--searches N]
                       [--ceiling-only]

Measures, against the server at URL (the same client code for every server):
  - log_metric: N single `MlflowClient.log_metric` calls, one after another (calls/s);
  - log_batch: N `MlflowClient.log_batch` calls of 1,000 metrics each (ms per call);
  - search: `search_runs` over an experiment of --runs runs, with the issue's filter,
    ordered by AUC, first page of 100 (ms per search). The runs are filled once, through
    the API (`create_run` + `log_batch` per run), or with --fill-sql DB straight into an
    MLflow SQLite database (its server takes ~70 ms a call, hours for 100,000 runs). Both
    ways write the same runs (same seed), so both servers must find the same AUCs.
With --ceiling-only (a trivial server), only the client-side rate of log_metric/log_batch.
"""

import argparse
import json
import os
import random
import statistics
import sys
import time

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunTag  # noqa: E402

FILTER = (
    "metrics.auc > 0.8 and params.algorithm = 'logistic_regression' "
    "and tags.segment LIKE 'reads-%'"
)


def log_metric_rate(client, run_id, calls):
    started = time.perf_counter()
    for i in range(calls):
        client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    return calls / (time.perf_counter() - started)


def log_batch_ms(client, run_id, batches):
    times = []
    now = int(time.time() * 1000)
    for b in range(batches):
        metrics = [Metric(f"m{i % 10}", float(i), now, b * 1000 + i) for i in range(1000)]
        started = time.perf_counter()
        client.log_batch(run_id, metrics=metrics)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


def synthetic_runs(runs):
    """The runs both servers hold: (segment, family, algorithm, l2, auc, pr_auc)."""
    rng = random.Random(7)
    for i in range(runs):
        family = "reads" if i % 2 == 0 else "brand"
        algo = "logistic_regression" if rng.random() < 0.5 else "gbdt"
        l2 = str(rng.choice([1e-4, 1e-3, 1e-2]))
        yield f"{family}-{i % 500}", family, algo, l2, rng.uniform(0.5, 0.95), rng.uniform(0.05, 0.6)


def fill(client, experiment_id, runs):
    now = int(time.time() * 1000)
    started = time.perf_counter()
    for i, (segment, family, algo, l2, auc, pr_auc) in enumerate(synthetic_runs(runs)):
        run = client.create_run(experiment_id, tags={"segment": segment})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("auc", auc, now, 0), Metric("pr_auc", pr_auc, now, 0)],
            params=[Param("algorithm", algo), Param("l2", l2)],
            tags=[RunTag("family", family)],
        )
        if (i + 1) % 10000 == 0:
            print(f"  filled {i + 1:,} runs ({(i + 1) / (time.perf_counter() - started):,.0f}/s)",
                  file=sys.stderr, flush=True)
    return time.perf_counter() - started


def fill_mlflow_sql(db, experiment_id, runs):
    """Writes the runs straight into an MLflow database (a SQLite file, or a
    `postgresql://` URL through psycopg2), as its server would."""
    import uuid

    if db.startswith("postgresql"):
        import psycopg2
        import psycopg2.extras

        con = psycopg2.connect(db.replace("postgresql+psycopg2://", "postgresql://", 1))
        cur = con.cursor()
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
        )
        cols = {r[0] for r in cur.fetchall()}
        mark = "%s"

        def run_many(sql, rows):
            psycopg2.extras.execute_batch(cur, sql, rows, page_size=1000)
    else:
        import sqlite3

        con = sqlite3.connect(db)
        cur = con.cursor()
        cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
        mark = "?"
        run_many = cur.executemany

    def insert(sql, rows):
        run_many(sql.replace("?", mark), rows)

    now = int(time.time() * 1000)
    started = time.perf_counter()
    rows = {"runs": [], "tags": [], "params": [], "metrics": [], "latest_metrics": []}
    for segment, family, algo, l2, auc, pr_auc in synthetic_runs(runs):
        rid = uuid.uuid4().hex
        run = {
            "run_uuid": rid, "name": "", "source_type": "UNKNOWN", "source_name": "",
            "entry_point_name": "", "user_id": "bench", "status": "RUNNING",
            "start_time": now, "end_time": None, "deleted_time": None, "source_version": "",
            "lifecycle_stage": "active", "artifact_uri": f"mlflow-artifacts:/{experiment_id}/{rid}/artifacts",
            "experiment_id": int(experiment_id),
        }
        rows["runs"].append(tuple(run[c] for c in sorted(cols)))
        rows["tags"] += [("segment", segment, rid), ("family", family, rid), ("mlflow.user", "bench", rid)]
        rows["params"] += [("algorithm", algo, rid), ("l2", l2, rid)]
        for key, value in (("auc", auc), ("pr_auc", pr_auc)):
            rows["metrics"].append((key, value, now, rid, 0, False))
            rows["latest_metrics"].append((key, value, now, 0, False, rid))
    names = sorted(cols)
    insert(
        f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})", rows["runs"]
    )
    insert("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", rows["tags"])
    insert("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", rows["params"])
    insert(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
        rows["metrics"],
    )
    insert(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows["latest_metrics"],
    )
    con.commit()
    con.close()
    return time.perf_counter() - started


def search_ms(client, experiment_id, searches):
    times, found = [], None
    for _ in range(searches):
        started = time.perf_counter()
        page = client.search_runs(
            [experiment_id], filter_string=FILTER, order_by=["metrics.auc DESC"], max_results=100
        )
        times.append((time.perf_counter() - started) * 1000)
        found = [round(r.data.metrics["auc"], 12) for r in page]
    return statistics.median(times), times, found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("name")
    ap.add_argument("out")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--runs", type=int, default=100_000)
    ap.add_argument("--searches", type=int, default=10)
    ap.add_argument("--ceiling-only", action="store_true")
    ap.add_argument("--fill-sql", metavar="DB",
                    help="fill the search runs straight into this MLflow database (SQLite file or postgresql:// URL)")
    ap.add_argument("--analyze", metavar="PGURL",
                    help="run ANALYZE on this PostgreSQL database before searching")
    args = ap.parse_args()
    client = MlflowClient(tracking_uri=args.url)
    result = {"server": args.name, "url": args.url}
    if args.ceiling_only:
        result["log_metric_per_s"] = log_metric_rate(client, "0" * 32, args.calls)
        result["log_batch_ms"], _ = log_batch_ms(client, "0" * 32, args.batches)
    else:
        exp = client.create_experiment(f"bench-{int(time.time())}")
        run_id = client.create_run(exp).info.run_id
        result["log_metric_per_s"] = log_metric_rate(client, run_id, args.calls)
        result["log_metric_calls"] = args.calls
        result["log_batch_ms"], result["log_batch_all_ms"] = log_batch_ms(client, run_id, args.batches)
        history = client.get_metric_history(run_id, "loss")
        assert len(history) == args.calls, (len(history), args.calls)
        search_exp = client.get_experiment_by_name("search-100k")
        if search_exp is None:
            search_id = client.create_experiment("search-100k")
            if args.fill_sql:
                result["fill_s"] = fill_mlflow_sql(args.fill_sql, search_id, args.runs)
                result["fill"] = "sql"
            else:
                result["fill_s"] = fill(client, search_id, args.runs)
                result["fill"] = "api"
        else:
            search_id = search_exp.experiment_id
        if args.analyze:
            # Fresh planner statistics after the bulk fill, as autovacuum would give in time.
            import psycopg2

            con = psycopg2.connect(args.analyze.replace("postgresql+psycopg2://", "postgresql://", 1))
            con.autocommit = True
            con.cursor().execute("ANALYZE")
            con.close()
        result["search_ms"], result["search_all_ms"], found = search_ms(client, search_id, args.searches)
        result["search_hits"] = len(found)
        result["search_top_auc"] = found[:5]
    json.dump(result, open(args.out, "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_all_ms")}))


if __name__ == "__main__":
    main()
