#!/usr/bin/env python3
"""The `behaviour` features as of a date, computed by Polars from the events Parquet file.

Usage: peer_polars.py --events events.parquet --as-of YYYY-MM-DD --vocab behaviour.json --out out.parquet

Lazy plan: human events of the 28 days before T, session starts over each (user, date)
ordered by (ts, event_id) before the point-in-time filter (as Spire's daily partials do),
then the arrival filter, then one group-by over users. Category and brand counts are
aggregated in long form (user × value) and pivoted to columns.
"""
import datetime as dt
import time

started = time.time()

import polars as pl  # noqa: E402

from common import DAY_US, HOUR_US, LATENESS_HOURS, SESSION_GAP_S, WINDOWS, args, feature_columns, slug  # noqa: E402


def main():
    a = args()
    t, t_us = a.t_day, a.t_us
    maxw = max(WINDOWS)
    day = pl.col("day")
    counted = (
        pl.scan_parquet(a.events)
        .filter(
            ~pl.col("is_bot")
            & (pl.col("event_date") >= a.as_of - dt.timedelta(days=maxw))
            & (pl.col("event_date") < a.as_of)
        )
        .select(
            "user_id",
            "event_id",
            pl.col("ts").dt.epoch("us").alias("ts_us"),
            pl.col("received_at").dt.epoch("us").alias("recv_us"),
            pl.col("event_date").cast(pl.Int32).alias("day"),
            "event_type",
            "category",
            "brand",
            "content_id",
            "dwell_ms",
        )
        .with_columns(
            (
                (pl.col("ts_us") - pl.col("ts_us").shift(1).over(["user_id", "day"], order_by=["ts_us", "event_id"]))
                .gt(SESSION_GAP_S * 1_000_000)
                .fill_null(True)
            )
            .cast(pl.Int64)
            .alias("session_start")
        )
        # arrived by T + lateness (equivalent to Spire's late_hours <= 24 * (T - d - 1) + lateness)
        .filter(pl.col("recv_us") <= t_us + LATENESS_HOURS * HOUR_US)
    )

    aggs = []
    for w in WINDOWS:
        in_w = day >= t - w
        dwell = pl.col("dwell_ms").filter(in_w)
        aggs += [
            in_w.sum().cast(pl.Float64).alias(f"events_{w}d"),
            day.filter(in_w).n_unique().cast(pl.Float64).alias(f"active_days_{w}d"),
            pl.col("session_start").filter(in_w).sum().cast(pl.Float64).alias(f"sessions_{w}d"),
            pl.col("content_id").filter(in_w).drop_nulls().n_unique().cast(pl.Float64).alias(f"distinct_content_{w}d"),
            pl.when(dwell.count() > 0)
            .then(dwell.sum().cast(pl.Float64) / dwell.count().cast(pl.Float64) / 1000.0)
            .otherwise(0.0)
            .alias(f"mean_dwell_s_{w}d"),
        ]
    aggs += [
        ((t_us - pl.col("ts_us").max().cast(pl.Float64)) / DAY_US).alias("days_since_last"),
        (pl.col("event_type") == "video_play").sum().cast(pl.Float64).alias("video_plays_28d"),
        (pl.col("event_type") == "share").sum().cast(pl.Float64).alias("shares_28d"),
    ]
    base = counted.group_by("user_id").agg(aggs)

    def wide(dim, values):
        """Counts per (user, value) in each window, pivoted to `{dim}_{slug}_{w}d` columns."""
        long = (
            counted.filter(pl.col(dim).is_in(values))
            .group_by("user_id", dim)
            .agg([(day >= t - w).sum().cast(pl.Float64).alias(f"{w}d") for w in WINDOWS])
        )
        out = long.pivot(on=dim, on_columns=values, index="user_id", values=[f"{w}d" for w in WINDOWS])
        # pivot names the columns `{window}_{value}`; rename them to Spire's names.
        return out.rename({f"{w}d_{v}": f"{dim}_{slug(v)}_{w}d" for w in WINDOWS for v in values})

    result = base
    for dim, values in (("category", a.categories), ("brand", a.brands)):
        result = result.join(wide(dim, values), on="user_id", how="left")
    columns = feature_columns(a.categories, a.brands)
    result = result.select(["user_id"] + [pl.col(c).fill_null(0.0) for c in columns]).sort("user_id").collect()
    result.write_parquet(a.out)
    print(f"polars {pl.__version__}: {result.height} users in {time.time() - started:.2f} s")


if __name__ == "__main__":
    main()
