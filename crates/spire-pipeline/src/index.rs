//! The in-memory "user → segments" index served by `spire serve` and `spire segments get`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;
use spire_core::time::date_from_days;
use spire_lake::columns;
use spire_lake::tables::SEGMENTS;
use spire_lake::Lake;

use crate::error::Result;

/// One membership.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Membership {
    /// Segment.
    pub segment: String,
    /// Score (1.0 for rule segments).
    pub score: f64,
    /// Model version (model segments).
    pub model_version: Option<i64>,
    /// Snapshot date.
    pub as_of: NaiveDate,
}

/// Size of one segment in the loaded snapshot.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SegmentSize {
    /// Segment.
    pub segment: String,
    /// Members.
    pub members: usize,
    /// Snapshot date.
    pub as_of: NaiveDate,
    /// Model version (model segments).
    pub model_version: Option<i64>,
}

/// The latest memberships of every segment, by user.
#[derive(Debug, Clone, Default)]
pub struct SegmentIndex {
    by_user: HashMap<String, Vec<Membership>>,
    sizes: BTreeMap<String, SegmentSize>,
    /// `segments` table version loaded.
    pub version: Option<i64>,
}

impl SegmentIndex {
    /// Loads, for each segment, its rows of its latest `as_of`.
    pub async fn load(lake: &Lake) -> Result<SegmentIndex> {
        let ctx = lake.session();
        let Some(version) = lake.register_as(&ctx, SEGMENTS, "segments").await? else {
            return Ok(SegmentIndex::default());
        };
        let sql = "SELECT s.user_id, s.segment, s.score, s.model_version, CAST(s.as_of AS INT) AS d
                   FROM segments s JOIN (SELECT segment, MAX(as_of) AS m FROM segments GROUP BY segment) l
                   ON s.segment = l.segment AND s.as_of = l.m";
        let mut index = SegmentIndex {
            version: Some(version),
            ..Default::default()
        };
        for b in Lake::query(&ctx, sql).await? {
            let users = columns::strings(&b, "user_id")?;
            let segs = columns::strings(&b, "segment")?;
            let scores = columns::floats(&b, "score")?;
            let versions = columns::ints(&b, "model_version")?;
            let dates = columns::ints(&b, "d")?;
            use spire_lake::arrow::array::Array;
            for r in 0..b.num_rows() {
                let m = Membership {
                    segment: segs.value(r).to_string(),
                    score: scores.value(r),
                    model_version: (!versions.is_null(r)).then(|| versions.value(r)),
                    as_of: date_from_days(dates.value(r) as i32),
                };
                let size = index
                    .sizes
                    .entry(m.segment.clone())
                    .or_insert_with(|| SegmentSize {
                        segment: m.segment.clone(),
                        members: 0,
                        as_of: m.as_of,
                        model_version: m.model_version,
                    });
                size.members += 1;
                index
                    .by_user
                    .entry(users.value(r).to_string())
                    .or_default()
                    .push(m);
            }
        }
        for v in index.by_user.values_mut() {
            v.sort_by(|a, b| a.segment.cmp(&b.segment));
        }
        Ok(index)
    }

    /// A user's memberships (empty for an unknown user).
    pub fn user(&self, user_id: &str) -> &[Membership] {
        self.by_user.get(user_id).map_or(&[], Vec::as_slice)
    }

    /// Segment sizes, by name.
    pub fn sizes(&self) -> Vec<SegmentSize> {
        self.sizes.values().cloned().collect()
    }

    /// Number of users with at least one membership.
    pub fn users(&self) -> usize {
        self.by_user.len()
    }
}
