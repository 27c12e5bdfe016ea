//! Integration tests of intake and cleaning against real Delta tables.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod files;
mod parse_props;
mod synthetic;

use spire_core::config::{Cleaning, Intake, Source, SourceKind};
use spire_ingest::clean::{self, Reconciliation};
use spire_ingest::intake::{self, IntakeReport};
use spire_lake::Lake;

pub fn intake_rules() -> Intake {
    Intake {
        max_future_skew_secs: 300,
        max_record_bytes: 4096,
        batch_rows: 3,
    }
}

pub fn cleaning() -> Cleaning {
    Cleaning {
        bot_user_agent_patterns: spire_core::config::default_bot_patterns(),
        max_events_per_user_per_minute: 5,
    }
}

pub fn file_source(pattern: &str) -> Source {
    Source {
        name: "files".into(),
        kind: SourceKind::File {
            pattern: pattern.into(),
            format: None,
        },
        fields: vec![],
        fallback: None,
    }
}

/// Intake + clean + reconcile, as `spire ingest` does.
pub async fn ingest(lake: &Lake, source: &Source, id: &str) -> (IntakeReport, Reconciliation) {
    let mut s = spire_ingest::build_source(source).unwrap();
    let report = intake::ingest(lake, source, &intake_rules(), s.as_mut(), id, &mut |_| {})
        .await
        .unwrap();
    let dates = report
        .dates
        .iter()
        .map(|d| spire_core::time::date_from_days(*d))
        .collect();
    clean::clean(lake, &cleaning(), Some(dates), &mut |_, _| {})
        .await
        .unwrap();
    let rec = clean::reconcile(lake, id, report.read, report.dead_lettered)
        .await
        .unwrap();
    (report, rec)
}

pub async fn count(lake: &Lake, sql: &str) -> i64 {
    let ctx = lake.session();
    lake.register_all(&ctx).await.unwrap();
    let b = Lake::query(&ctx, sql).await.unwrap();
    spire_lake::columns::ints(&b[0], b[0].schema().field(0).name())
        .unwrap()
        .value(0)
}
