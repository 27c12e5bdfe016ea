#!/usr/bin/env python3
"""The `behaviour` features as of a date, computed by DuckDB from the events Parquet file.

Usage: peer_duckdb.py --events events.parquet --as-of YYYY-MM-DD --vocab behaviour.json --out out.parquet

One SQL statement: human events of the 28 days before T, session starts over each
(user, date) ordered by (ts, event_id) before the point-in-time filter (as Spire's daily
partials do), then the arrival filter, then one aggregate per feature (FILTER clauses).
"""
import datetime as dt
import time

started = time.time()

import duckdb  # noqa: E402

from common import DAY_US, HOUR_US, LATENESS_HOURS, SESSION_GAP_S, WINDOWS, args, slug  # noqa: E402


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def query(a):
    t, t_us = a.t_day, a.t_us
    maxw = max(WINDOWS)
    sel = []
    for w in WINDOWS:
        f = f"FILTER (WHERE day >= {t - w})"
        sel += [
            f"CAST(COUNT(*) {f} AS DOUBLE) AS events_{w}d",
            f"CAST(COUNT(DISTINCT day) {f} AS DOUBLE) AS active_days_{w}d",
            f"CAST(COALESCE(SUM(session_start) {f}, 0) AS DOUBLE) AS sessions_{w}d",
            f"CAST(COUNT(DISTINCT content_id) {f} AS DOUBLE) AS distinct_content_{w}d",
            f"COALESCE(CAST(SUM(dwell_ms) {f} AS DOUBLE) / NULLIF(COUNT(dwell_ms) {f}, 0) / 1000.0, 0.0) AS mean_dwell_s_{w}d",
        ]
        sel += [f"CAST(COUNT(*) FILTER (WHERE day >= {t - w} AND category = {lit(c)}) AS DOUBLE) AS category_{slug(c)}_{w}d" for c in a.categories]
        sel += [f"CAST(COUNT(*) FILTER (WHERE day >= {t - w} AND brand = {lit(b)}) AS DOUBLE) AS brand_{slug(b)}_{w}d" for b in a.brands]
    sel += [
        f"({t_us} - CAST(MAX(ts_us) AS DOUBLE)) / {DAY_US}.0 AS days_since_last",
        "CAST(COUNT(*) FILTER (WHERE event_type = 'video_play') AS DOUBLE) AS video_plays_28d",
        "CAST(COUNT(*) FILTER (WHERE event_type = 'share') AS DOUBLE) AS shares_28d",
    ]
    cols = ",\n  ".join(sel)
    return f"""
WITH h AS (
  SELECT user_id, event_id, epoch_us(ts) AS ts_us, epoch_us(received_at) AS recv_us,
         CAST(event_date - DATE '1970-01-01' AS INTEGER) AS day,
         event_type, category, brand, content_id, dwell_ms
  FROM read_parquet({lit(a.events)})
  WHERE NOT is_bot AND event_date >= DATE '{a.as_of - dt.timedelta(days=maxw)}' AND event_date < DATE '{a.as_of}'
), s AS (
  SELECT *, CASE WHEN ts_us - LAG(ts_us) OVER (PARTITION BY user_id, day ORDER BY ts_us, event_id) <= {SESSION_GAP_S * 1_000_000}
                 THEN 0 ELSE 1 END AS session_start
  FROM h
)
-- arrived by T + lateness (equivalent to Spire's late_hours <= 24 * (T - d - 1) + lateness)
SELECT user_id,
  {cols}
FROM s WHERE recv_us <= {t_us + LATENESS_HOURS * HOUR_US}
GROUP BY user_id ORDER BY user_id
"""


def main():
    a = args()
    con = duckdb.connect()
    con.execute(f"COPY ({query(a)}) TO {lit(a.out)} (FORMAT parquet)")
    rows = con.execute(f"SELECT COUNT(*) FROM read_parquet({lit(a.out)})").fetchone()[0]
    print(f"duckdb {duckdb.__version__}: {rows} users in {time.time() - started:.2f} s")


if __name__ == "__main__":
    main()
