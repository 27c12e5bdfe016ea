#!/usr/bin/env bash
# Benchmark: the same exported events through `spire features build` and through DuckDB and
# Polars computing the same features (the `behaviour` feature set of examples/quickstart).
# See bench/README.md. Not run in CI; no timing assertions anywhere.
#
# Env knobs:
#   BENCH_USERS      synthetic users (default 175000, ≈10M events; e.g. 3000 for a quick run)
#   BENCH_DIR        work folder (default /tmp/spire-bench); one folder per BENCH_USERS
#   BENCH_VENV       Python venv for the peers (default /var/cache/spire/bench-venv)
#   CARGO_TARGET_DIR cargo target folder (default /var/cache/spire/target)
#   BENCH_SKIP_SPIRE=1  time only the peers and check them against each other (for sizes
#                    whose Spire snapshot does not fit in memory; see bench/README.md)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
venv="${BENCH_VENV:-/var/cache/spire/bench-venv}"
dir="${BENCH_DIR:-/tmp/spire-bench}"
users="${BENCH_USERS:-175000}"
skip_spire="${BENCH_SKIP_SPIRE:-0}"
project="$dir/project"
lake="$project/spire-data/lake"
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# 1. Spire's release binary.
log "building spire (release)"
(cd "$root" && cargo build --release -p spire-cli)
spire="$CARGO_TARGET_DIR/release/spire"

# 2. The peers, pinned.
if ! "$venv/bin/python" -c "import duckdb, polars, pyarrow" >/dev/null 2>&1; then
  log "creating $venv with duckdb, polars, pyarrow"
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install --quiet "duckdb==2.0.1" "polars==2.1.0" pyarrow; then
    log "WARNING: the pinned duckdb==2.0.1 / polars==2.1.0 did not install; using the newest available"
    "$venv/bin/pip" install --quiet duckdb polars pyarrow
  fi
fi
py="$venv/bin/python"
versions="$("$py" -c 'import duckdb, polars, pyarrow; print(f"duckdb {duckdb.__version__}, polars {polars.__version__}, pyarrow {pyarrow.__version__}")')"
log "peers: $versions"

# 3. The project and its events (setup, not timed; `spire demo` also trains models).
mkdir -p "$dir"
if [[ -f "$dir/users" && "$(cat "$dir/users")" != "$users" ]]; then
  echo "$dir holds a project for $(cat "$dir/users") users, not $users: set BENCH_DIR to another folder" >&2
  exit 2
fi
if [[ ! -d "$project" ]]; then
  echo "$users" >"$dir/users"
  log "spire demo: $users users × 30 days into $project (log: $dir/demo.log)"
  if ! "$spire" demo --dir "$project" --users "$users" --days 30 --seed 1 >"$dir/demo.log" 2>&1; then
    grep -v 'WARN\|ERROR' "$dir/demo.log" | tail -n 20 >&2
    # The bench needs only `events` and the frozen vocabulary, both written before training.
    if [[ -d "$lake/events/_delta_log" && -f "$lake/_spire/feature_sets/behaviour.json" ]]; then
      log "WARNING: spire demo failed after ingest and vocabulary (see $dir/demo.log); continuing"
    else
      echo "spire demo failed (see $dir/demo.log); remove $project to retry" >&2
      exit 1
    fi
  fi
fi

# 4. Export the active files of `events` to one Parquet file (not timed).
events="$dir/events.parquet"
if [[ ! -f "$events" || "$lake/events/_delta_log" -nt "$events" ]]; then
  log "exporting events to $events"
  "$py" "$here/export_events.py" "$lake" "$events"
fi
n_events="$("$py" -c 'import sys, pyarrow.parquet as pq; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$events")"
log "events.parquet: $n_events rows"

last="$("$spire" --project "$project" --json sql "SELECT CAST(MAX(event_date) AS VARCHAR) AS d FROM events WHERE NOT is_bot")"
as_of="$("$py" -c 'import datetime as dt, json, sys; print(dt.date.fromisoformat(json.loads(sys.argv[1])[0]["d"]) + dt.timedelta(days=1))' "$last")"
vocab="$lake/_spire/feature_sets/behaviour.json"
[[ -f "$vocab" ]] || { echo "missing $vocab (run spire features build once)" >&2; exit 1; }
log "as of $as_of"

# timed NAME CMD...: runs CMD, keeps its output in $dir/NAME.out, sets secs/rss_mb (wall, peak RSS).
timed() {
  local name="$1"; shift
  if ! /usr/bin/time -f '%e %M' -o "$dir/$name.time" "$@" >"$dir/$name.out" 2>"$dir/$name.err"; then
    cat "$dir/$name.err" >&2
    echo "$name failed" >&2
    exit 1
  fi
  read -r secs rss_kb <"$dir/$name.time"
  rss_mb=$((rss_kb / 1024))
  log "$name: ${secs} s, peak RSS ${rss_mb} MiB"
}

# Other work on the machine skews every figure below: say so.
busy="$(ps -eo pcpu=,comm= --sort=-pcpu | awk '$1 > 20 {printf "%s(%s%%) ", $2, $1}')"
log "load average $(cut -d' ' -f1-3 /proc/loadavg)${busy:+; busy processes: $busy}"

# 5. Spire: full feature build from events (partials and snapshot deleted; the frozen
#    vocabulary is kept), then the same build with nothing changed.
spire_full=- spire_full_rss=- spire_noop=- spire_noop_rss=-
if [[ "$skip_spire" != 1 ]]; then
  for t in partials_behaviour partials_behaviour_content partials_behaviour_state features_behaviour; do
    rm -rf "${lake:?}/$t"
  done
  sync
  timed spire_full "$spire" --project "$project" --json features build --as-of "$as_of"
  spire_full=$secs spire_full_rss=$rss_mb
  timed spire_noop "$spire" --project "$project" --json features build --as-of "$as_of"
  spire_noop=$secs spire_noop_rss=$rss_mb
  rebuilt="$("$py" -c 'import json, sys
for f in sys.argv[1:]:
    b = json.load(open(f))[0]
    print("{0[dates_rebuilt]}/{0[dates_total]} dates rebuilt, {1[users]} users".format(b["partials"], b["snapshots"][0]))' \
    "$dir/spire_full.out" "$dir/spire_noop.out")"
  log "spire full: ${rebuilt%%$'\n'*}; no-op: ${rebuilt#*$'\n'}"
fi

# 6. The peers, each in its own process, from the same Parquet file.
peer_args=(--events "$events" --as-of "$as_of" --vocab "$vocab")
timed duckdb "$py" "$here/peer_duckdb.py" "${peer_args[@]}" --out "$dir/duckdb.parquet"
duckdb_s=$secs duckdb_rss=$rss_mb
timed polars "$py" "$here/peer_polars.py" "${peer_args[@]}" --out "$dir/polars.parquet"
polars_s=$secs polars_rss=$rss_mb

# 7. Same work: same users, columns, sums and cells, or no figures.
if [[ "$skip_spire" != 1 ]]; then
  "$py" "$here/check.py" "$lake" "$as_of" duckdb="$dir/duckdb.parquet" polars="$dir/polars.parquet"
else
  "$py" "$here/check.py" --no-spire duckdb="$dir/duckdb.parquet" polars="$dir/polars.parquet"
fi

# 8. Summary.
users_out="$("$py" -c 'import pyarrow.parquet as pq, sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)' "$dir/duckdb.parquet")"
"$py" - "$n_events" "$users_out" "$as_of" "$versions" \
  "$spire_full" "$spire_full_rss" "$spire_noop" "$spire_noop_rss" "$duckdb_s" "$duckdb_rss" "$polars_s" "$polars_rss" <<'PY'
import os, sys
n, users, as_of, versions = sys.argv[1:5]
f = [None if x == "-" else float(x) for x in sys.argv[5:]]
full, full_rss, noop, noop_rss, duck, duck_rss, pol, pol_rss = f
ratio = lambda a, b: "-" if a is None or b is None else f"{a / b:.2f}"
num = lambda x, fmt: "-" if x is None else format(x, fmt)
print()
print(f"features bench: {int(n):,} events, {int(users):,} users in the snapshot as of {as_of}; "
      f"{os.cpu_count()} cores; {versions}")
print(f"{'':<28} {'wall s':>8} {'peak MiB':>9} {'÷ Spire full':>13}")
for name, s, rss in [("Spire features build (full)", full, full_rss), ("Spire refresh (no-op)", noop, noop_rss),
                     ("DuckDB", duck, duck_rss), ("Polars", pol, pol_rss)]:
    print(f"{name:<28} {num(s, '.2f'):>8} {num(rss, '.0f'):>9} {ratio(s, full):>13}")
print(f"ratios peer / Spire full: DuckDB {ratio(duck, full)}, Polars {ratio(pol, full)}; "
      f"peer / Spire no-op: DuckDB {ratio(duck, noop)}, Polars {ratio(pol, noop)}")
PY
