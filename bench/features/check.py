#!/usr/bin/env python3
"""Checks that Spire's snapshot and the peers' outputs hold the same features.

Usage: check.py LAKE_DIR AS_OF NAME=out.parquet [NAME=out.parquet ...]
       check.py --no-spire NAME=out.parquet NAME=out.parquet [...]

Reads `features_behaviour` with `scripts/read_delta.py` (rows with as_of = AS_OF), then per
peer compares the user count, the feature column names, each column's sum (relative
tolerance 1e-6) and each cell after joining on user_id (tolerance 1e-9 · (1 + |value|)).
Prints a mismatch table and exits 1 if anything differs. With --no-spire the first peer is
the reference (for sizes Spire cannot run).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from read_delta import read  # noqa: E402

import polars as pl  # noqa: E402
import pyarrow.compute as pc  # noqa: E402


def main():
    if sys.argv[1] == "--no-spire":
        peers = [p.split("=", 1) for p in sys.argv[2:]]
        ref_name, as_of = peers[0][0], "-"
        spire = pl.read_parquet(peers.pop(0)[1])
    else:
        lake, as_of, peers = sys.argv[1], sys.argv[2], [p.split("=", 1) for p in sys.argv[3:]]
        _, table = read(os.path.join(lake, "features_behaviour"))
        table = table.filter(pc.equal(pc.cast(table["as_of"], "string"), as_of))
        spire = pl.from_arrow(table).drop(["as_of", "feature_set_version"])
        ref_name = "Spire"
    features = [c for c in spire.columns if c != "user_id"]
    problems = []
    outs = {}
    for name, path in peers:
        df = pl.read_parquet(path)
        outs[name] = df
        if df.height != spire.height:
            problems.append(f"{name}: {df.height} users, {ref_name} {spire.height}")
        missing = sorted(set(features) - set(df.columns))
        extra = sorted(set(df.columns) - set(features) - {"user_id"})
        if missing or extra:
            problems.append(f"{name}: columns missing {missing[:10]} extra {extra[:10]}")
        only_spire = spire.join(df, on="user_id", how="anti").height
        only_peer = df.join(spire, on="user_id", how="anti").height
        if only_spire or only_peer:
            problems.append(f"{name}: {only_spire} users only in {ref_name}, {only_peer} only in {name}")
    rows = []
    for c in features:
        s = float(spire[c].sum())
        line = [c, s]
        bad = False
        for name, df in outs.items():
            if c not in df.columns:
                line += [float("nan"), -1]
                bad = True
                continue
            p = float(df[c].sum())
            j = spire.select("user_id", c).join(df.select("user_id", pl.col(c).alias("_p")), on="user_id", how="inner")
            cells = j.filter((pl.col(c) - pl.col("_p")).abs() > 1e-9 * (1 + pl.col(c).abs())).height
            if abs(p - s) > 1e-6 * max(1.0, abs(s)) or cells:
                bad = True
            line += [p, cells]
        if bad:
            rows.append(line)
    print(f"check: {ref_name} snapshot {as_of}: {spire.height} users × {len(features)} features; compared with {', '.join(outs)}")
    for p in problems:
        print("MISMATCH", p)
    if rows:
        head = f"{'column':<32} {ref_name + ' sum':>16}" + "".join(f" {n + ' sum':>16} {n + ' cells≠':>14}" for n in outs)
        print(head)
        for r in rows:
            print(f"{r[0]:<32} {r[1]:>16.6f}" + "".join(f" {r[i]:>16.6f} {r[i + 1]:>14}" for i in range(2, len(r), 2)))
    if problems or rows:
        print(f"check FAILED: {len(problems)} structural problems, {len(rows)} columns differ")
        sys.exit(1)
    print("check ok: same users, same columns, equal sums and cells")


if __name__ == "__main__":
    main()
