#!/usr/bin/env bash
# One client that costs (almost) nothing: wrk with one thread and one keep-alive connection,
# so requests go one after another as from a single client. Measures `log-metric` calls/s and
# the median latency of a 1,000-metric `log-batch` against a tracking server (Spire or
# MLflow) and writes them as JSON. Fails if any response is not 2xx.
#
#   bench/registry/wrk.sh URL NAME OUT.json [SECONDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
url="$1" name="$2" out="$3" secs="${4:-10}"
run_id="$(curl -fsS -X POST -H 'Content-Type: application/json' \
  -d '{"experiment_id":"0","run_name":"wrk"}' "$url/api/2.0/mlflow/runs/create" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"]["info"]["run_id"])')"
measure() { # script → "requests/s median_ms"
  local text
  text="$(RUN_ID="$run_id" wrk -t1 -c1 -d"${secs}s" --latency -s "$here/$1" "$url")"
  if grep -q "Non-2xx" <<<"$text"; then
    echo "!!! $name: $1 got error responses:" >&2
    echo "$text" >&2
    exit 1
  fi
  python3 - "$text" <<'PY'
import re, sys
t = sys.argv[1]
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
v, unit = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", t).groups()
ms = float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]
print(rate, ms)
PY
}
read -r metric_rate _ <<<"$(measure wrk_log_metric.lua)"
read -r _ batch_ms <<<"$(measure wrk_log_batch.lua)"
python3 - "$name" "$metric_rate" "$batch_ms" "$out" <<'PY'
import json, sys
name, rate, ms, out = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
json.dump({"server": name, "log_metric_per_s": rate, "log_batch_ms": ms}, open(out, "w"))
print(json.dumps({"server": name, "log_metric_per_s": round(rate, 1), "log_batch_ms": ms}))
PY
