#!/usr/bin/env bash
# Starts (once) the S3-compatible server Spire's artifact tests run against: moto's server
# (`moto[server]==5.2.5` from pip, in its own virtualenv), in memory, on 127.0.0.1:5055.
# Leaves a running server alone. Prints the endpoint URL on stdout as its last line.
#
#   scripts/moto-server.sh           # venv at $SPIRE_MOTO_VENV or /var/cache/spire/moto-venv
#
# Fails loudly (non-zero exit) when the server cannot be installed or does not answer:
# the tests that need it never skip.
set -euo pipefail
MOTO_VERSION="5.2.5"
port="${SPIRE_MOTO_PORT:-5055}"
endpoint="http://127.0.0.1:$port"
venv="${SPIRE_MOTO_VENV:-/var/cache/spire/moto-venv}"
answers() { curl -fsS -o /dev/null --max-time 2 "$endpoint/moto-api/" 2>/dev/null; }
if ! answers; then
  if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "setting up $venv with moto[server]==$MOTO_VERSION (S3-compatible test server)" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
  fi
  log="${TMPDIR:-/tmp}/spire-moto-$port.log"
  echo "starting moto on $endpoint (log: $log)" >&2
  nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
  for _ in $(seq 1 50); do
    answers && break
    sleep 0.2
  done
  if ! answers; then
    echo "!!! moto did not answer on $endpoint; see $log" >&2
    exit 1
  fi
fi
echo "$endpoint"
