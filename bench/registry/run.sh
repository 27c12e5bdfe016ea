#!/usr/bin/env bash
# Benchmark: Spire's MLflow-compatible tracking server against MLflow's own (`mlflow server`,
# the pinned version of scripts/mlflow-venv.sh), both on SQLite, driven by the same client
# (the real `mlflow` Python client, retries off) on the same machine. First measures the
# client's own ceiling against a trivial HTTP server. See bench/README.md. Not run in CI.
#
# Durability on both sides is SQLite's default `synchronous = FULL` (every commit is
# fsynced): Spire's registry runs in WAL mode, MLflow's SQLAlchemy store in SQLite's
# default rollback-journal mode. Then the same on PostgreSQL (the server's settings,
# `fsync` and `synchronous_commit` on), with psycopg2-binary added to the MLflow venv;
# both databases get ANALYZE after the bulk fill, before the searches.
#
# Env knobs:
#   BENCH_CALLS     log_metric calls per server (default 2000; MLflow gets BENCH_MLFLOW_CALLS)
#   BENCH_MLFLOW_CALLS  log_metric calls against MLflow (default 200: ~70 ms each)
#   BENCH_BATCHES   log_batch calls of 1,000 metrics (default 20)
#   BENCH_RUNS      runs in the searched experiment (default 100000)
#   BENCH_DIR       scratch folder (default /var/cache/spire/bench-registry)
#   BENCH_POSTGRES  1 (default) to repeat everything with both servers on PostgreSQL
#   BENCH_POSTGRES_URL  admin URL of the PostgreSQL server (default
#                   postgres://postgres@127.0.0.1:5432/postgres); the run (re)creates the
#                   databases spire_bench_spire and spire_bench_mlflow there
#   CARGO_TARGET_DIR cargo target folder (default /var/cache/spire/target)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
work="${BENCH_DIR:-/var/cache/spire/bench-registry}"
calls="${BENCH_CALLS:-2000}"
mlflow_calls="${BENCH_MLFLOW_CALLS:-200}"
batches="${BENCH_BATCHES:-20}"
runs="${BENCH_RUNS:-100000}"
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
wait_http() {
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "!!! nothing answers at $1" >&2
  exit 1
}

command -v wrk >/dev/null || { echo "!!! wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
python="$("$root/scripts/mlflow-venv.sh" | tail -n 1)"
log "building spire (release)"
(cd "$root" && cargo build --release -p spire-cli)
spire="$CARGO_TARGET_DIR/release/spire"
mkdir -p "$work"
rm -rf "$work/spire" "$work/spire-pg" "$work/mlflow" "$work"/*.json
mkdir -p "$work/mlflow"

log "client ceiling: the same client against a trivial HTTP server"
"$python" "$here/trivial_server.py" 5091 & pids+=($!)
sleep 1
"$python" "$here/bench.py" http://127.0.0.1:5091 trivial "$work/trivial.json" \
  --ceiling-only --calls "$calls" --batches "$batches"
"$python" "$here/raw_client.py" http://127.0.0.1:5091 trivial "$work/raw-trivial.json" \
  --calls 5000 --batches "$batches"

log "Spire: spire serve on SQLite"
"$spire" init "$work/spire" >/dev/null
"$spire" --project "$work/spire" serve --addr 127.0.0.1:5092 2>"$work/spire-serve.log" & pids+=($!)
wait_http http://127.0.0.1:5092/healthz
"$python" "$here/bench.py" http://127.0.0.1:5092 spire "$work/spire.json" \
  --calls "$calls" --batches "$batches" --runs "$runs"
"$python" "$here/raw_client.py" http://127.0.0.1:5092 spire "$work/raw-spire.json" \
  --calls 5000 --batches "$batches"
"$here/wrk.sh" http://127.0.0.1:5092 spire "$work/wrk-spire.json"

log "MLflow: mlflow server on SQLite"
"$python" -m mlflow server --backend-store-uri "sqlite:///$work/mlflow/mlflow.db" \
  --artifacts-destination "$work/mlflow/artifacts" --host 127.0.0.1 --port 5093 \
  >"$work/mlflow-server.log" 2>&1 & pids+=($!)
wait_http http://127.0.0.1:5093/health
"$python" "$here/bench.py" http://127.0.0.1:5093 mlflow "$work/mlflow.json" \
  --calls "$mlflow_calls" --batches "$batches" --runs "$runs" --fill-sql "$work/mlflow/mlflow.db"
"$python" "$here/raw_client.py" http://127.0.0.1:5093 mlflow "$work/raw-mlflow.json" \
  --calls 300 --batches "$batches"
"$here/wrk.sh" http://127.0.0.1:5093 mlflow "$work/wrk-mlflow.json"

if [ "${BENCH_POSTGRES:-1}" = 1 ]; then
  pg="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
  server="${pg%/*}"
  log "PostgreSQL: fresh databases spire_bench_spire and spire_bench_mlflow on ${server#*@}"
  for db in spire_bench_spire spire_bench_mlflow; do
    psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
    psql "$pg" -qc "CREATE DATABASE $db"
  done
  "$python" -c "import psycopg2" 2>/dev/null \
    || "$python" -m pip install --quiet --disable-pip-version-check "psycopg2-binary==2.9.13"

  log "Spire: spire serve on PostgreSQL"
  "$spire" init "$work/spire-pg" >/dev/null
  sed -i "s#^registry = .*#registry = \"$server/spire_bench_spire\"#" "$work/spire-pg/spire.toml"
  "$spire" --project "$work/spire-pg" serve --addr 127.0.0.1:5094 2>"$work/spire-pg-serve.log" & pids+=($!)
  wait_http http://127.0.0.1:5094/healthz
  "$python" "$here/bench.py" http://127.0.0.1:5094 spire-pg "$work/spire-pg.json" \
    --calls "$calls" --batches "$batches" --runs "$runs" --analyze "$server/spire_bench_spire"
  "$python" "$here/raw_client.py" http://127.0.0.1:5094 spire-pg "$work/raw-spire-pg.json" \
    --calls 5000 --batches "$batches"
  "$here/wrk.sh" http://127.0.0.1:5094 spire-pg "$work/wrk-spire-pg.json"

  log "MLflow: mlflow server on PostgreSQL"
  # SQLAlchemy's plain postgresql:// means psycopg 3 here; the venv has psycopg2.
  mlflow_pg="postgresql+psycopg2://${server#*://}/spire_bench_mlflow"
  "$python" -m mlflow server --backend-store-uri "$mlflow_pg" \
    --artifacts-destination "$work/mlflow/artifacts-pg" --host 127.0.0.1 --port 5095 \
    >"$work/mlflow-pg-server.log" 2>&1 & pids+=($!)
  wait_http http://127.0.0.1:5095/health
  "$python" "$here/bench.py" http://127.0.0.1:5095 mlflow-pg "$work/mlflow-pg.json" \
    --calls "$mlflow_calls" --batches "$batches" --runs "$runs" --fill-sql "$mlflow_pg" \
    --analyze "$mlflow_pg"
  "$python" "$here/raw_client.py" http://127.0.0.1:5095 mlflow-pg "$work/raw-mlflow-pg.json" \
    --calls 300 --batches "$batches"
  "$here/wrk.sh" http://127.0.0.1:5095 mlflow-pg "$work/wrk-mlflow-pg.json"
fi

python3 - "$work" <<'PY'
import json, os, sys
w = sys.argv[1]
t, s, m = (json.load(open(f"{w}/{n}.json")) for n in ("trivial", "spire", "mlflow"))
rt, rs, rm = (json.load(open(f"{w}/raw-{n}.json")) for n in ("trivial", "spire", "mlflow"))
assert s["search_top_auc"] == m["search_top_auc"], (s["search_top_auc"], m["search_top_auc"])
print(f"client ceiling (trivial server): {t['log_metric_per_s']:,.0f} log_metric/s, "
      f"log_batch(1000) {t['log_batch_ms']:.1f} ms")
print(f"{'':28}{'Spire':>12}{'MLflow':>12}{'ratio':>9}")
print(f"{'log_metric calls/s':28}{s['log_metric_per_s']:>12,.0f}{m['log_metric_per_s']:>12,.1f}"
      f"{s['log_metric_per_s'] / m['log_metric_per_s']:>8.1f}×")
print(f"{'log_batch 1,000 metrics, ms':28}{s['log_batch_ms']:>12.1f}{m['log_batch_ms']:>12.1f}"
      f"{m['log_batch_ms'] / s['log_batch_ms']:>8.1f}×")
print(f"{'search over 100k runs, ms':28}{s['search_ms']:>12.1f}{m['search_ms']:>12.1f}"
      f"{m['search_ms'] / s['search_ms']:>8.1f}×")
print(f"raw keep-alive client (requests.Session; ceiling {rt['log_metric_per_s']:,.0f}/s, "
      f"{rt['log_batch_ms']:.1f} ms):")
print(f"{'log_metric calls/s':28}{rs['log_metric_per_s']:>12,.0f}{rm['log_metric_per_s']:>12,.1f}"
      f"{rs['log_metric_per_s'] / rm['log_metric_per_s']:>8.1f}×")
print(f"{'log_batch 1,000 metrics, ms':28}{rs['log_batch_ms']:>12.1f}{rm['log_batch_ms']:>12.1f}"
      f"{rm['log_batch_ms'] / rs['log_batch_ms']:>8.1f}×")
print(f"(Spire filled {s.get('fill_s', 0):.0f} s through its API; same top AUCs on both: {s['search_top_auc'][:3]})")
ws, wm = (json.load(open(f"{w}/wrk-{n}.json")) for n in ("spire", "mlflow"))
print("wrk, one connection (a client that costs almost nothing):")
print(f"{'log_metric calls/s':28}{ws['log_metric_per_s']:>12,.0f}{wm['log_metric_per_s']:>12,.1f}"
      f"{ws['log_metric_per_s'] / wm['log_metric_per_s']:>8.1f}×")
print(f"{'log_batch 1,000 metrics, ms':28}{ws['log_batch_ms']:>12.1f}{wm['log_batch_ms']:>12.1f}"
      f"{wm['log_batch_ms'] / ws['log_batch_ms']:>8.1f}×")
if os.path.exists(f"{w}/mlflow-pg.json"):
    s, m = (json.load(open(f"{w}/{n}.json")) for n in ("spire-pg", "mlflow-pg"))
    rs, rm = (json.load(open(f"{w}/raw-{n}.json")) for n in ("spire-pg", "mlflow-pg"))
    assert s["search_top_auc"] == m["search_top_auc"], (s["search_top_auc"], m["search_top_auc"])
    print("PostgreSQL:")
    print(f"{'':28}{'Spire':>12}{'MLflow':>12}{'ratio':>9}")
    for label, key, better in (("log_metric calls/s", "log_metric_per_s", "higher"),
                               ("log_batch 1,000 metrics, ms", "log_batch_ms", "lower"),
                               ("search over 100k runs, ms", "search_ms", "lower")):
        ratio = s[key] / m[key] if better == "higher" else m[key] / s[key]
        print(f"{label:28}{s[key]:>12,.1f}{m[key]:>12,.1f}{ratio:>8.1f}×")
    ws, wm = (json.load(open(f"{w}/wrk-{n}.json")) for n in ("spire-pg", "mlflow-pg"))
    for kind, a, b in (("raw", rs, rm), ("wrk", ws, wm)):
        for label, key, better in ((f"{kind} log_metric calls/s", "log_metric_per_s", "higher"),
                                   (f"{kind} log_batch, ms", "log_batch_ms", "lower")):
            ratio = a[key] / b[key] if better == "higher" else b[key] / a[key]
            print(f"{label:28}{a[key]:>12,.1f}{b[key]:>12,.1f}{ratio:>8.1f}×")
    print(f"(Spire filled {s.get('fill_s', 0):.0f} s through its API)")
PY
