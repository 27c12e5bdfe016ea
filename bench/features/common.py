"""Shared definitions of the `behaviour` feature set for the peer implementations.

These mirror `examples/quickstart/spire.toml` (windows_days = [1, 7, 28], lateness_hours = 6,
default session gap 1800 s, all aggregations, and the `engagement` SQL transform) and the
column naming of `spire-features` (`snapshot::feature_columns`, `column_slug`).
"""
import argparse
import datetime as dt
import json

WINDOWS = [1, 7, 28]
LATENESS_HOURS = 6
SESSION_GAP_S = 1800
DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000


def slug(value):
    """`spire_features::column_slug`: ASCII-lowercase, non-alphanumerics to `_`."""
    # Rust's to_ascii_lowercase, then every char that is not ASCII alphanumeric becomes `_`.
    out = "".join(c.lower() if (c.isascii() and c.isalnum()) else "_" for c in value)
    if not out or out[0].isdigit():
        out = "v" + out
    return out


def vocab(path):
    """The frozen categories and brands (the last feature-set version)."""
    with open(path) as f:
        last = json.load(f)[-1]
    return last["categories"], last["brands"]


def feature_columns(categories, brands):
    """Spire's column order: per window the base aggregations, categories, brands; then
    days_since_last; then the SQL transform's columns."""
    cols = []
    for w in WINDOWS:
        cols += [f"events_{w}d", f"active_days_{w}d", f"sessions_{w}d", f"distinct_content_{w}d", f"mean_dwell_s_{w}d"]
        cols += [f"category_{slug(c)}_{w}d" for c in categories]
        cols += [f"brand_{slug(b)}_{w}d" for b in brands]
    cols += ["days_since_last", "video_plays_28d", "shares_28d"]
    return cols


def args():
    p = argparse.ArgumentParser()
    p.add_argument("--events", required=True, help="events Parquet file")
    p.add_argument("--as-of", required=True, help="snapshot date YYYY-MM-DD")
    p.add_argument("--vocab", required=True, help="<lake>/_spire/feature_sets/behaviour.json")
    p.add_argument("--out", required=True, help="output Parquet file")
    a = p.parse_args()
    a.as_of = dt.date.fromisoformat(a.as_of)
    a.t_day = (a.as_of - dt.date(1970, 1, 1)).days  # T as days since the epoch
    a.t_us = a.t_day * DAY_US  # T at 00:00 UTC, microseconds
    a.categories, a.brands = vocab(a.vocab)
    return a
