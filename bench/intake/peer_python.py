"""The Python peer of bench/intake: the same events into a Delta table with the `deltalake`
writer, from JSON Lines files (pyarrow's JSON reader) or from Kafka (confluent-kafka's
consumer, orjson, pyarrow), in batches of 500,000 rows like Spire's default. Like Spire, it
keeps each record's source position (partition, offset) as columns and commits batch by
batch. Prints one JSON line with its timings.

    python peer_python.py files EVENTS.jsonl DELTA_DIR
    python peer_python.py kafka BROKERS TOPIC COUNT DELTA_DIR
"""
import json
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
from deltalake import write_deltalake

BATCH = 500_000
FIELDS = ["event_id", "user_id", "event_type", "category", "content_id", "url", "user_agent", "country"]


def files(path: str, out: str) -> None:
    started = time.perf_counter()
    table = pj.read_json(path, read_options=pj.ReadOptions(block_size=64 << 20))
    ts = pc.cast(table["ts"], pa.timestamp("ms", tz="UTC"))
    table = table.set_column(table.schema.get_field_index("ts"), "ts", ts)
    n = table.num_rows
    table = table.append_column("source_offset", pa.array(range(1, n + 1), pa.int64()))
    for start in range(0, n, BATCH):
        write_deltalake(out, table.slice(start, BATCH), mode="append")
    secs = time.perf_counter() - started
    print(json.dumps({"peer": "python-files", "events": n, "seconds": round(secs, 3), "per_s": round(n / secs)}))


def kafka(brokers: str, topic: str, count: int, out: str) -> None:
    import orjson
    from confluent_kafka import Consumer

    c = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"peer-{time.time_ns()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    c.subscribe([topic])
    started = time.perf_counter()
    first = None
    n = 0
    cols = {k: [] for k in FIELDS + ["ts", "dwell_ms", "source_partition", "source_offset"]}

    def flush() -> None:
        arrays = {k: pa.array(v) for k, v in cols.items()}
        arrays["ts"] = pa.array(cols["ts"], pa.timestamp("ms", tz="UTC"))
        write_deltalake(out, pa.table(arrays), mode="append")
        for v in cols.values():
            v.clear()

    while n < count:
        msgs = c.consume(num_messages=10_000, timeout=1.0)
        if not msgs:
            if time.perf_counter() - started > 120:
                raise SystemExit(f"no messages for 120 s after {n}")
            continue
        if first is None:
            first = time.perf_counter()
        for m in msgs:
            if m.error():
                continue
            e = orjson.loads(m.value())
            for k in FIELDS:
                cols[k].append(e.get(k))
            cols["ts"].append(e["ts"])
            cols["dwell_ms"].append(e.get("dwell_ms"))
            cols["source_partition"].append(m.partition())
            cols["source_offset"].append(m.offset())
            n += 1
        if len(cols["ts"]) >= BATCH:
            flush()
    if cols["ts"]:
        flush()
    end = time.perf_counter()
    c.close()
    print(
        json.dumps(
            {
                "peer": "python-kafka",
                "events": n,
                "join_s": round(first - started, 3),
                "steady_s": round(end - first, 3),
                "per_s": round(n / (end - first)),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "files":
        files(sys.argv[2], sys.argv[3])
    else:
        kafka(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5])
