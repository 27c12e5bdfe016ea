#!/usr/bin/env bash
# bench/intake: events per second into Spire's lake, from JSON Lines files and from a
# Kafka-protocol broker (tansu, scripts/kafka-broker.sh), against a bare librdkafka consumer
# and a Python peer (pyarrow's JSON reader / confluent-kafka + orjson, both with the
# `deltalake` writer) on the same data, in one run.
#
#   bench/intake/run.sh [EVENTS]      # default 2,000,000
#
# Needs: a release build (made here), python3 with venv. Work folder: $BENCH_DIR (default
# /var/cache/spire/bench-intake).
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-2000000}"
PARTITIONS=4
work="${BENCH_DIR:-/var/cache/spire/bench-intake}"
venv="${SPIRE_BENCH_VENV:-/var/cache/spire/intake-venv}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/spire/target}"
mkdir -p "$work"

echo "== release build" >&2
cargo build --release -p spire-cli --bin spire -p spire-ingest --example kafka_bare >&2
spire="$CARGO_TARGET_DIR/release/spire"
bare="$CARGO_TARGET_DIR/release/examples/kafka_bare"

if ! "$venv/bin/python" -c "import deltalake, confluent_kafka, orjson, pyarrow" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "deltalake==1.6.6" "confluent-kafka==2.16.1" "orjson==3.13.0" "pyarrow==26.0.1" >&2
fi
py="$venv/bin/python"

events="$work/events-$N.jsonl"
[ -s "$events" ] || "$py" bench/intake/gen_events.py "$events" "$N"
echo "== input: $N events, $(du -h "$events" | cut -f1)" >&2

now() { date +%s.%N; }
project() { # project DIR [kafka TOPIC]
  rm -rf "$1"; mkdir -p "$1"
  { echo '[project]'; echo 'name = "bench"'; echo '[storage]'; echo 'lake = "lake"'
    if [ "${2:-}" = kafka ]; then
      printf '[[sources]]\nname = "clicks"\nkind = "kafka"\nbrokers = "%s"\ntopics = ["%s"]\ngroup_id = "spire-%s"\n' \
        "$brokers" "$3" "$3"
    fi; } > "$1/spire.toml"
}

echo "== files → Delta" >&2
project "$work/files"
t0=$(now)
(cd "$work/files" && SPIRE_LOG=spire_ingest=debug "$spire" ingest --path "$events" >/dev/null 2>"$work/files.err")
t1=$(now)
echo "spire files: $("$py" bench/intake/timings.py "$work/files.err" "$N" "$(echo "$t1 - $t0" | bc)")"
rm -rf "$work/peer-files"
echo "python files: $("$py" bench/intake/peer_python.py files "$events" "$work/peer-files")"

echo "== Kafka → Delta" >&2
brokers="$(scripts/kafka-broker.sh --restart | tail -n 1)"
topic="bench-$(date +%s)"
"$py" bench/intake/produce.py "$brokers" "$topic" "$events" "$PARTITIONS"
echo "bare librdkafka: $("$bare" "$brokers" "$topic" "$N")"
project "$work/kafka" kafka "$topic"
t0=$(now)
(cd "$work/kafka" && SPIRE_LOG=spire_ingest=debug "$spire" ingest --source clicks >/dev/null 2>"$work/kafka.err")
t1=$(now)
echo "spire kafka: $("$py" bench/intake/timings.py "$work/kafka.err" "$N" "$(echo "$t1 - $t0" | bc)")"
rm -rf "$work/peer-kafka"
echo "python kafka: $("$py" bench/intake/peer_python.py kafka "$brokers" "$topic" "$N" "$work/peer-kafka")"
