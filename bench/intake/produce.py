"""Produces a JSON Lines file into a Kafka topic (one record per line, round-robin over the
topic's partitions). bench/intake's setup, not timed.

    python produce.py BROKERS TOPIC EVENTS.jsonl PARTITIONS
"""
import sys

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main() -> None:
    brokers, topic, path, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result()
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "queue.buffering.max.messages": 1_000_000})
    n = 0
    with open(path, "rb") as f:
        for line in f:
            while True:
                try:
                    p.produce(topic, line.rstrip(b"\n"), partition=n % partitions)
                    break
                except BufferError:
                    p.poll(0.05)
            n += 1
            if n % 100_000 == 0:
                p.poll(0)
    left = p.flush(120)
    if left:
        raise SystemExit(f"{left} records not acknowledged")
    print(f"produced {n} records to {topic}", file=sys.stderr)


if __name__ == "__main__":
    main()
