#!/usr/bin/env python3
"""Reads a Delta table with nothing but the Delta log protocol and pyarrow.

It shares no code with Spire: it replays `_delta_log` (checkpoint, then JSON commits) to
the set of active files, reads them with pyarrow.parquet, restores partition columns from
`partitionValues`, and prints a JSON summary: version, rows, columns, and optional sums.

Usage: read_delta.py TABLE_DIR [--count-where COLUMN=VALUE]
"""
import json
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq


def active_files(table):
    log = os.path.join(table, "_delta_log")
    files = {}
    partition_columns = []
    start = -1
    last = os.path.join(log, "_last_checkpoint")
    if os.path.exists(last):
        with open(last) as f:
            cp = json.load(f)
        start = cp["version"]
        t = pq.read_table(os.path.join(log, f"{start:020d}.checkpoint.parquet")).to_pylist()
        for row in t:
            if row.get("add"):
                files[row["add"]["path"]] = row["add"].get("partitionValues") or {}
            if row.get("metaData"):
                partition_columns = row["metaData"]["partitionColumns"]
    versions = sorted(int(n.split(".")[0]) for n in os.listdir(log) if n.endswith(".json"))
    version = start
    for v in versions:
        if v <= start:
            continue
        with open(os.path.join(log, f"{v:020d}.json")) as f:
            for line in f:
                action = json.loads(line)
                if "add" in action:
                    files[action["add"]["path"]] = action["add"].get("partitionValues") or {}
                elif "remove" in action:
                    files.pop(action["remove"]["path"], None)
                elif "metaData" in action:
                    partition_columns = action["metaData"]["partitionColumns"]
        version = v
    return version, files, partition_columns


def read(table):
    from urllib.parse import unquote

    version, files, partition_columns = active_files(table)
    parts = []
    for path, values in sorted(files.items()):
        t = pq.read_table(os.path.join(table, unquote(path)))
        for c in partition_columns:
            if c not in t.column_names:
                t = t.append_column(c, pa.array([values.get(c)] * t.num_rows, pa.string()))
        parts.append(t)
    data = pa.concat_tables(parts, promote_options="default") if parts else pa.table({})
    return version, data


def main():
    table = sys.argv[1]
    version, data = read(table)
    out = {"version": version, "rows": data.num_rows, "columns": sorted(data.column_names)}
    args = sys.argv[2:]
    while args:
        flag, arg = args[0], args[1]
        args = args[2:]
        if flag == "--count-where":
            col, val = arg.split("=", 1)
            out[f"count:{arg}"] = int(pc.sum(pc.equal(pc.cast(data[col], pa.string()), val)).as_py() or 0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
