//! Concurrent `Lake::overwrite`s of disjoint rows in one partition all land: a commit that
//! Delta's conflict check refuses is rebuilt on the new version and retried.
//!
//! Each writer replaces two segments named far apart (`a3`, `z3`), so the column statistics
//! of every writer's file overlap every other writer's predicate, as the files of scoring
//! tasks that publish interleaved segment families do: without the retry, Delta refuses
//! most of these commits ("a concurrent transaction added new data").
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use spire_lake::arrow::array::{Int64Array, RecordBatch, StringArray};
use spire_lake::arrow::datatypes::{DataType, Field, Schema};
use spire_lake::datafusion::prelude::{col, lit};
use spire_lake::{columns, Lake};

const DATE: &str = "2026-11-20";

fn rows(segments: &[String], n: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("as_of", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("user", DataType::Int64, false),
    ]));
    let len = usize::try_from(n).unwrap() * segments.len();
    let names: Vec<&str> = segments
        .iter()
        .flat_map(|s| std::iter::repeat_n(s.as_str(), len / segments.len()))
        .collect();
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![DATE; len])),
            Arc::new(StringArray::from(names)),
            Arc::new(Int64Array::from_iter_values(0..len as i64)),
        ],
    )
    .unwrap()
}

/// Replaces segments `a{i}` and `z{i}` with `n` rows each.
async fn replace(lake: &Lake, i: i64, n: i64) -> Option<i64> {
    let segments = [format!("a{i}"), format!("z{i}")];
    let predicate = col("as_of")
        .eq(lit(DATE))
        .and(col("segment").in_list(segments.iter().map(|s| lit(s.as_str())).collect(), false));
    lake.overwrite(
        "memberships",
        vec![rows(&segments, n)],
        &["as_of"],
        Some(predicate),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overwrites_of_disjoint_rows_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    assert_eq!(replace(&lake, 0, 3).await, Some(0));

    let writers: Vec<_> = (1..=8)
        .map(|i| {
            let lake = lake.clone();
            tokio::spawn(async move { replace(&lake, i, i).await })
        })
        .collect();
    let mut versions = Vec::new();
    for w in writers {
        versions.push(w.await.unwrap().unwrap());
    }
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<i64>>(), "one commit each");

    // A re-run replaces its rows instead of adding to them.
    replace(&lake, 3, 30).await;

    let ctx = lake.session();
    lake.register_as(&ctx, "memberships", "m").await.unwrap();
    let batches = Lake::query(
        &ctx,
        "SELECT segment, COUNT(*) AS n FROM m GROUP BY segment ORDER BY segment",
    )
    .await
    .unwrap();
    let mut got = Vec::new();
    for b in &batches {
        let names = columns::strings(b, "segment").unwrap();
        let counts = columns::ints(b, "n").unwrap();
        for r in 0..b.num_rows() {
            got.push((names.value(r).to_string(), counts.value(r)));
        }
    }
    let mut want: Vec<(String, i64)> = (0..=8)
        .flat_map(|i| {
            let n = match i {
                0 => 3,
                3 => 30,
                i => i,
            };
            [(format!("a{i}"), n), (format!("z{i}"), n)]
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}
