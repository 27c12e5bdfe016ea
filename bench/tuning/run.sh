#!/usr/bin/env bash
# Benchmark: does warm-starting a `for_each` family's tuning from earlier members reach the
# same cross-validated AUC in fewer trials? Runs crates/spire-ml/examples/bench_tuning.rs on
# the label columns of the bench/training data (generated here if missing). See
# bench/README.md. Not run in CI.
#
# Env knobs:
#   BENCH_ROWS       users per member (default 3000)
#   BENCH_MEMBERS    family members, one label column each (default 12)
#   BENCH_BUDGET     TPE trials per search, cold and warm (default 12)
#   BENCH_REFERENCE  trials of the long search that sets each member's target (default 40)
#   BENCH_DIR        data folder (default /var/cache/spire/bench-data)
#   BENCH_VENV       Python venv with numpy, to generate the data (default
#                    /var/cache/spire/bench-venv)
#   CARGO_TARGET_DIR cargo target folder (default /var/cache/spire/target)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
venv="${BENCH_VENV:-/var/cache/spire/bench-venv}"
data="${BENCH_DIR:-/var/cache/spire/bench-data}/training-100000-64-100"
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ ! -f "$data/meta.json" ]; then
  if ! "$venv/bin/python" -c "import numpy" >/dev/null 2>&1; then
    log "installing numpy into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet numpy
  fi
  log "generating 100,000 users × 64 features × 100 label columns"
  "$venv/bin/python" "$root/bench/training/gen_data.py" "$data" \
    --users 100000 --features 64 --models 100
fi

log "building (release)"
(cd "$root" && cargo build --release -p spire-ml --example bench_tuning)
log "tuning: cold and warm-started TPE per member"
"$CARGO_TARGET_DIR/release/examples/bench_tuning" "$data" \
  --rows "${BENCH_ROWS:-3000}" --members "${BENCH_MEMBERS:-12}" \
  --budget "${BENCH_BUDGET:-12}" --reference "${BENCH_REFERENCE:-40}" > "$data/tuning.json"

python3 - "$data/tuning.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"{r['members']} members × {r['rows']:,} users, 3-fold CV AUC; budget {r['budget']} TPE trials; "
      f"target = best of a {r['reference']}-trial search − 0.001")
print(f"{'member':>6} {'target':>8} {'cold':>5} {'warm':>5}")
for m in r["per_member"]:
    print(f"{m['member']:>6} {m['target']:8.4f} {m['cold_trials']:>5} {m['warm_trials']:>5}")
print(f"mean trials to target over members 1..: cold {r['mean_cold_trials_to_target']:.2f}, "
      f"warm {r['mean_warm_trials_to_target']:.2f} (budget + 1 counted when never reached)")
print(f"mean best AUC within budget: cold {r['mean_cold_best']:.5f}, warm {r['mean_warm_best']:.5f}")
PY
