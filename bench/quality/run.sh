#!/usr/bin/env bash
# Quality benchmark: cross-validated ROC AUC of Spire's logistic regression and gradient-boosted
# trees against scikit-learn and LightGBM on the shared public datasets, on identical folds
# (`spire ml evaluate --fold-column`). Prints the table with the verdict
# "Spire mean ≥ peer mean − 0.005" per row and exits 1 if a row fails. See bench/README.md.
# Not run in CI.
#
# Env knobs:
#   SPIRE_BENCH_VENV   Python venv for the peers (default /var/cache/spire/bench-venv); created
#                      with scikit-learn 1.9.1 and lightgbm 4.7.0 when they are missing
#   SPIRE_SHARED_DATA  the shared datasets (default <repo>/../shared/data)
#   BENCH_DIR          work folder (default /tmp/spire-bench-quality)
#   BENCH_SEEDS        fold assignments, one per seed (default 3)
#   BENCH_FOLDS        stratified folds per seed (default 5)
#   CARGO_TARGET_DIR   cargo target folder (default /var/cache/spire/target)
#   BENCH_REUSE_PEER=1 keep the peers' results from an earlier run in BENCH_DIR
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
venv="${SPIRE_BENCH_VENV:-/var/cache/spire/bench-venv}"
shared="${SPIRE_SHARED_DATA:-$root/../shared/data}"
work="${BENCH_DIR:-/tmp/spire-bench-quality}"
seeds="${BENCH_SEEDS:-3}"
folds="${BENCH_FOLDS:-5}"
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if ! "$venv/bin/python" -c "import sklearn, lightgbm, numpy; assert sklearn.__version__ == '1.9.1' and lightgbm.__version__ == '4.7.0'" >/dev/null 2>&1; then
  log "installing scikit-learn 1.9.1 and lightgbm 4.7.0 into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "scikit-learn==1.9.1" "lightgbm==4.7.0" numpy
fi
py="$venv/bin/python"

log "building spire (release)"
(cd "$root" && cargo build --release -p spire-cli)
spire="$CARGO_TARGET_DIR/release/spire"

mkdir -p "$work/data" "$work/out"
log "preparing the datasets with $seeds × stratified $folds-fold assignments in $work/data"
"$py" "$here/prepare.py" "$shared" "$work/data" --seeds "$seeds" --folds "$folds"

log "load: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows both sides)"
log "Spire: spire ml evaluate --fold-column …"
PYTHONPATH="$here" "$py" "$here/plan.py" "$work/data" "$work/out" "$folds" |
  while IFS=$'\t' read -r dataset config seed result args; do
    IFS=$'\t' read -r -a argv <<< "$args"
    log "  $dataset $config seed $seed"
    "$spire" --json ml evaluate "${argv[@]}" > "$result" < /dev/null
  done

if [ "${BENCH_REUSE_PEER:-0}" = 1 ] && [ -s "$work/out/peer.json" ]; then
  log "reusing the peers' results in $work/out/peer.json"
else
  log "peers: scikit-learn and LightGBM on the same folds"
  PYTHONPATH="$here" "$py" "$here/peer.py" "$work/data" "$work/out/peer.json" >&2
fi

PYTHONPATH="$here" "$py" "$here/report.py" "$work/data" "$work/out"
