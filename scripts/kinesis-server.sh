#!/usr/bin/env bash
# Starts (once) the Kinesis-compatible server Spire's Kinesis intake tests run against:
# kinesalite (`kinesalite@3.3.3` from npm, installed into $SPIRE_KINESALITE_DIR or
# /var/cache/spire/kinesalite), in memory, on 127.0.0.1:4567. It speaks the Kinesis JSON
# protocol the AWS SDK uses, with real-looking 56-digit sequence numbers, resharding and
# closed shards. Leaves a running server alone. Prints the endpoint URL as its last line.
#
#   scripts/kinesis-server.sh            # install if needed, start if not running
#   scripts/kinesis-server.sh --restart  # stop a running one first (drops its streams)
#
# Fails loudly (non-zero exit) when the server cannot be installed or does not answer: the
# tests that need it never skip.
set -euo pipefail
KINESALITE_VERSION="3.3.3"
port="${SPIRE_KINESIS_PORT:-4567}"
endpoint="http://127.0.0.1:$port"
dir="${SPIRE_KINESALITE_DIR:-/var/cache/spire/kinesalite}"
bin="$dir/node_modules/.bin/kinesalite"
# Any well-formed request answers; an unsigned POST gets a JSON error, which is enough.
answers() { curl -sS -o /dev/null --max-time 2 -X POST "$endpoint/" 2>/dev/null; }
if [ "${1:-}" = "--restart" ]; then
  pkill -f "kinesalite --port $port" 2>/dev/null || true
  for _ in $(seq 1 50); do answers || break; sleep 0.1; done
fi
if ! answers; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "!!! kinesalite needs Node.js and npm (Debian: apt-get install nodejs npm)" >&2
    exit 1
  fi
  if [ ! -x "$bin" ] || ! grep -q "\"version\": \"$KINESALITE_VERSION\"" "$dir/node_modules/kinesalite/package.json" 2>/dev/null; then
    echo "installing kinesalite@$KINESALITE_VERSION into $dir (Kinesis-compatible test server)" >&2
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund "kinesalite@$KINESALITE_VERSION" >&2)
  fi
  log="${TMPDIR:-/tmp}/spire-kinesalite-$port.log"
  echo "starting kinesalite on $endpoint (log: $log)" >&2
  nohup "$bin" --port "$port" --createStreamMs 50 --deleteStreamMs 50 --updateStreamMs 50 \
    --shardLimit 1000 >"$log" 2>&1 &
  for _ in $(seq 1 100); do
    answers && break
    sleep 0.1
  done
  if ! answers; then
    echo "!!! kinesalite did not answer on $endpoint; see $log" >&2
    exit 1
  fi
fi
echo "$endpoint"
