#!/usr/bin/env bash
# Benchmark: 1,000 logistic-regression segment models on 1,000,000 users × 64 features.
# Spire trains them as one fused family and scores every user with every model; the peer is
# scikit-learn fitting the same models one by one (a timed sample, extrapolated to all of
# them) and numpy's GEMM on the scoring shapes. See bench/README.md. Not run in CI.
#
# Env knobs:
#   BENCH_USERS, BENCH_FEATURES, BENCH_MODELS  data size (default 1000000, 64, 1000)
#   BENCH_SAMPLE     sklearn fits to time (default 10)
#   BENCH_DIR        data folder (default /var/cache/spire/bench-data)
#   BENCH_VENV       Python venv for the peer (default /var/cache/spire/bench-venv)
#   CARGO_TARGET_DIR cargo target folder (default /var/cache/spire/target)
#   BENCH_REUSE_PEER=1  keep the peer's figures from an earlier run on the same data
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
venv="${BENCH_VENV:-/var/cache/spire/bench-venv}"
users="${BENCH_USERS:-1000000}"
features="${BENCH_FEATURES:-64}"
models="${BENCH_MODELS:-1000}"
sample="${BENCH_SAMPLE:-10}"
data="${BENCH_DIR:-/var/cache/spire/bench-data}/training-$users-$features-$models"
log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if ! "$venv/bin/python" -c "import numpy, sklearn" >/dev/null 2>&1; then
  log "installing numpy and scikit-learn into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "scikit-learn==1.9.1" numpy
fi
py="$venv/bin/python"

if [ ! -f "$data/meta.json" ]; then
  log "generating $users users × $features features × $models label columns"
  "$py" "$here/gen_data.py" "$data" --users "$users" --features "$features" --models "$models"
fi

log "building the Spire side (release)"
(cd "$root" && cargo build --release -p spire-ml --example bench_training)
log "Spire: fused training + scoring"
"$CARGO_TARGET_DIR/release/examples/bench_training" "$data" --sample "$sample" > "$data/spire.json"
if [ "${BENCH_REUSE_PEER:-0}" = 1 ] && [ -s "$data/peer.json" ]; then
  log "reusing the peer's figures in $data/peer.json"
else
  log "scikit-learn: $sample one-by-one fits, numpy GEMM"
  "$py" "$here/peer_sklearn.py" "$data" --sample "$sample" > "$data/peer.json"
fi

"$py" - "$data/spire.json" "$data/peer.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
m = s["models"]
print(f"data: {s['users']:,} users × {s['features']} features, {m} models, {s['train_rows']:,} training rows, {s['threads']} threads")
print(f"Spire fused training:   {s['fit_seconds']:8.1f} s  ({s['passes']} passes, mean {s['mean_iterations']:.1f} / max {s['max_iterations']} iterations, {s['converged']}/{m} converged)")
print(f"sklearn one by one:     {p['extrapolated_seconds']:8.1f} s  (mean {p['mean_fit_seconds']:.2f} s per fit over {len(p['fit_seconds'])} fits × {m}, extrapolated; scaling {p['scale_seconds']:.1f} s not counted)")
print(f"training speed-up:      {p['extrapolated_seconds'] / s['fit_seconds']:8.1f} ×")
sa, pa = s["sample_aucs"], p["sample_aucs"]
print(f"mean test AUC, sampled models: Spire {sum(sa)/len(sa):.5f}  sklearn {sum(pa)/len(pa):.5f}  (max |Δ| per model {max(abs(a-b) for a, b in zip(sa, pa)):.2e}); Spire over all {m}: {s['mean_auc']:.5f}")
print(f"scoring {m} models × {s['users']:,} users: product {s['score_gemm_seconds']:.2f} s = {s['score_gemm_gflops']:.1f} GFLOP/s; with sigmoid {s['score_seconds']:.2f} s = {s['score_gflops']:.1f} GFLOP/s")
print(f"numpy GEMM same shapes: {p['numpy_gemm_seconds']:.2f} s = {p['numpy_gemm_gflops']:.1f} GFLOP/s  → Spire product at {100*s['score_gemm_gflops']/p['numpy_gemm_gflops']:.0f} %, with sigmoid at {100*s['score_gflops']/p['numpy_gemm_gflops']:.0f} % of numpy")
print(f"versions: scikit-learn {p['sklearn_version']}, numpy {p['numpy_version']}")
PY
