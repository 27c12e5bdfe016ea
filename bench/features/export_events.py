#!/usr/bin/env python3
"""Exports the active files of Spire's Delta table `events` to one Parquet file.

Usage: export_events.py LAKE_DIR OUT.parquet

Reuses `scripts/read_delta.py` (a Delta log reader sharing no code with Spire). The
partition column `event_date` comes back from the log as a string; it is restored to a
date32 column. Prints the row count and a consistency check (event_date = UTC date of ts).
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from read_delta import read  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


def main():
    lake, out = sys.argv[1], sys.argv[2]
    started = time.time()
    version, data = read(os.path.join(lake, "events"))
    i = data.column_names.index("event_date")
    data = data.set_column(i, "event_date", pc.cast(data["event_date"], pa.date32()))
    ts_day = pc.cast(pc.cast(data["ts"], pa.timestamp("us")), pa.date32())
    off = data.num_rows - int(pc.sum(pc.equal(ts_day, data["event_date"])).as_py() or 0)
    tmp = out + ".tmp"
    pq.write_table(data, tmp)
    os.replace(tmp, out)
    humans = data.num_rows - int(pc.sum(data["is_bot"]).as_py() or 0)
    print(
        f"exported events version {version}: {data.num_rows} rows ({humans} human), "
        f"{len(data.column_names)} columns, {os.path.getsize(out) / 2**20:.0f} MiB "
        f"in {time.time() - started:.1f} s; rows whose event_date != date(ts): {off}"
    )
    print(f"schema: {', '.join(f'{f.name}:{f.type}' for f in data.schema)}")


if __name__ == "__main__":
    main()
