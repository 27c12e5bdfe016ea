#!/usr/bin/env bash
# Benchmark: one scheduler tick over 10,000 segment models (20 feature sets, 5 schedules in
# 4 time zones, 2% gradient-boosted in a pool of 2). Runs
# crates/spire-scheduler/examples/bench_tick.rs in release on a fresh SQLite file and a
# fresh PostgreSQL database. See bench/README.md. Not run in CI.
#
# Env knobs:
#   BENCH_MODELS            models (default 10000)
#   SPIRE_TEST_POSTGRES_URL admin URL used to create the scratch database
#                           (default postgres://postgres@127.0.0.1:5432/postgres)
#   CARGO_TARGET_DIR        cargo target folder (default /var/cache/spire/target)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
admin="${SPIRE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
work="$(mktemp -d)"
db="spire_bench_sched_$$"
trap 'psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
(cd "$root" && cargo build --release -p spire-scheduler --example bench_tick)
psql "$admin" -qc "CREATE DATABASE $db"
pg_url="${admin%/*}/$db"
"$CARGO_TARGET_DIR/release/examples/bench_tick" --models "${BENCH_MODELS:-10000}" \
  --registry "sqlite://$work/spire.db" --registry "$pg_url"
