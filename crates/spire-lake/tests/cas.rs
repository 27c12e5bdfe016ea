//! `Lake::append_cas`: an append lands only if the table still records the expected
//! application-transaction versions, including when writers race.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use spire_lake::arrow::array::{Int64Array, RecordBatch};
use spire_lake::arrow::datatypes::{DataType, Field, Schema};
use spire_lake::{CasOutcome, Lake, TxnAdvance};

fn rows(from: i64, to: i64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "offset",
        DataType::Int64,
        false,
    )]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(Int64Array::from_iter_values(from..to))],
    )
    .unwrap()
}

fn advance(expected: Option<i64>, version: i64) -> Vec<TxnAdvance> {
    vec![TxnAdvance {
        id: "stream:p0".into(),
        expected,
        version,
    }]
}

async fn count(lake: &Lake) -> i64 {
    let ctx = lake.session();
    lake.register_as(&ctx, "t", "t").await.unwrap();
    let b = Lake::query(&ctx, "SELECT count(*) AS n FROM t")
        .await
        .unwrap();
    spire_lake::columns::ints(&b[0], "n").unwrap().value(0)
}

#[tokio::test]
async fn stale_expectations_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    let first = lake
        .append_cas("t", vec![rows(0, 10)], &[], &advance(None, 9))
        .await
        .unwrap();
    assert!(matches!(first, CasOutcome::Committed(Some(0))), "{first:?}");
    // A second writer that also believed the stream was new (a zombie) is refused.
    let zombie = lake
        .append_cas("t", vec![rows(0, 10)], &[], &advance(None, 9))
        .await
        .unwrap();
    assert_eq!(
        zombie,
        CasOutcome::Conflict {
            id: "stream:p0".into(),
            expected: None,
            found: Some(9)
        }
    );
    let next = lake
        .append_cas("t", vec![rows(10, 20)], &[], &advance(Some(9), 19))
        .await
        .unwrap();
    assert!(matches!(next, CasOutcome::Committed(Some(1))), "{next:?}");
    assert_eq!(lake.txn_version("t", "stream:p0").await.unwrap(), Some(19));
    assert_eq!(count(&lake).await, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_racing_writers_with_one_expectation_exactly_one_lands() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    lake.append_cas("t", vec![rows(0, 10)], &[], &advance(None, 9))
        .await
        .unwrap();
    // Eight writers all expect version 9 and race to record 19.
    let mut handles = Vec::new();
    for _ in 0..8 {
        let lake = lake.clone();
        handles.push(tokio::spawn(async move {
            lake.append_cas("t", vec![rows(10, 20)], &[], &advance(Some(9), 19))
                .await
                .unwrap()
        }));
    }
    let mut committed = 0;
    for h in handles {
        match h.await.unwrap() {
            CasOutcome::Committed(_) => committed += 1,
            CasOutcome::Conflict { found, .. } => assert_eq!(found, Some(19)),
        }
    }
    assert_eq!(committed, 1, "exactly one writer may move 9 -> 19");
    assert_eq!(count(&lake).await, 20);
}

/// A table written before a column existed (an `events_raw` from before `source_sequence`)
/// takes appends that carry it: the column is added, null in the old rows.
#[tokio::test]
async fn appends_add_columns_an_older_table_lacks() {
    use spire_lake::arrow::array::StringArray;
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().to_str().unwrap()).unwrap();
    lake.append("t", vec![rows(0, 3)], &[]).await.unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("offset", DataType::Int64, false),
        Field::new("sequence", DataType::Utf8, true),
    ]));
    let wider = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(3..5)),
            Arc::new(StringArray::from(vec![
                Some("49680584805353000059912498630261902802875122498532278274"),
                None,
            ])),
        ],
    )
    .unwrap();
    let outcome = lake
        .append_cas("t", vec![wider], &[], &advance(None, 4))
        .await
        .unwrap();
    assert!(matches!(outcome, CasOutcome::Committed(_)), "{outcome:?}");
    let ctx = lake.session();
    lake.register_as(&ctx, "t", "t").await.unwrap();
    let b = Lake::query(
        &ctx,
        "SELECT count(*) AS n, count(sequence) AS s, max(sequence) AS m FROM t",
    )
    .await
    .unwrap();
    assert_eq!(spire_lake::columns::ints(&b[0], "n").unwrap().value(0), 5);
    assert_eq!(spire_lake::columns::ints(&b[0], "s").unwrap().value(0), 1);
    assert_eq!(
        spire_lake::columns::strings(&b[0], "m").unwrap().value(0),
        "49680584805353000059912498630261902802875122498532278274"
    );
}
