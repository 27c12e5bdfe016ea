#!/usr/bin/env bash
# Starts (once) the Kafka-protocol broker Spire's Kafka tests run against: tansu 0.6.0, a
# Rust broker from crates.io (`cargo install tansu --features dynostore`), with in-memory
# storage on 127.0.0.1:9092. The binary is kept in $SPIRE_TANSU_ROOT (default
# /var/cache/spire/tansu) because it takes about 14 minutes to build on 2 cores.
# Leaves a running broker alone. Prints the bootstrap address on stdout as its last line.
#
#   scripts/kafka-broker.sh            # install if needed, start if not running
#   scripts/kafka-broker.sh --restart  # stop the broker this script started, start afresh
#   scripts/kafka-broker.sh --stop     # stop it
#
# Fails loudly (non-zero exit) when the broker cannot be installed or does not answer: the
# tests that need it never skip.
set -euo pipefail
TANSU_VERSION="0.6.0"
port="${SPIRE_KAFKA_PORT:-9092}"
addr="127.0.0.1:$port"
root="${SPIRE_TANSU_ROOT:-/var/cache/spire/tansu}"
bin="$root/bin/tansu"
pidfile="${TMPDIR:-/tmp}/spire-tansu-$port.pid"
log="${TMPDIR:-/tmp}/spire-tansu-$port.log"
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
stop() {
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 1 50); do answers || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}
case "${1:-}" in
  --stop) stop; exit 0 ;;
  --restart) stop ;;
  "") ;;
  *) echo "usage: $0 [--restart|--stop]" >&2; exit 2 ;;
esac
if ! answers; then
  if ! "$bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    echo "installing tansu $TANSU_VERSION into $root (about 14 minutes on 2 cores)" >&2
    mkdir -p "$root"
    CARGO_TARGET_DIR="$root/target" cargo install tansu --version "$TANSU_VERSION" --locked \
      --features dynostore --root "$root" >&2
    rm -rf "$root/target"
  fi
  echo "starting tansu on $addr (log: $log)" >&2
  nohup "$bin" broker --listener-url "tcp://$addr" --advertised-listener-url "tcp://$addr" \
    --storage-engine memory://tansu/ >"$log" 2>&1 &
  echo $! >"$pidfile"
  for _ in $(seq 1 100); do
    answers && break
    sleep 0.1
  done
  if ! answers; then
    echo "!!! tansu did not answer on $addr; see $log" >&2
    exit 1
  fi
fi
echo "$addr"
