//! What the scheduler knows of a segment: its name, what it reads, how it trains, when it
//! runs. The caller (the pipeline, which can expand `for_each` families over the lake)
//! builds these from the project's specs.

use spire_core::config::{ScheduleSpec, SegmentKind, SegmentSpec};

/// How a segment's membership is computed, as far as scheduling cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// A model: trained, evaluated, gated, scored. `fusable` models (logistic regression)
    /// of one feature set train together in one fused task.
    Model {
        /// The algorithm name, e.g. `logistic_regression` or `gbdt`.
        algorithm: String,
        /// Whether it trains in the fused family task of its feature set.
        fusable: bool,
    },
    /// A rule: scored from the feature snapshot (or from other segments) without training.
    Rule {
        /// Segments it combines (`a AND NOT b`), which must be scored first.
        combines: Vec<String>,
    },
}

/// One schedulable segment (a `for_each` family member is one of these).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledModel {
    /// Segment name.
    pub name: String,
    /// The family (spec) it came from.
    pub family: String,
    /// Feature set it reads.
    pub feature_set: String,
    /// Model or rule.
    pub work: Work,
    /// Schedule and retry policy.
    pub schedule: ScheduleSpec,
}

impl ScheduledModel {
    /// The scheduler's view of an (expanded) segment spec of family `family`.
    pub fn from_spec(spec: &SegmentSpec, family: &str) -> ScheduledModel {
        let work = match &spec.kind {
            SegmentKind::Model(m) => Work::Model {
                algorithm: m.algorithm.clone(),
                fusable: m.algorithm == "logistic_regression",
            },
            SegmentKind::RulePredicate { .. } => Work::Rule {
                combines: Vec::new(),
            },
            SegmentKind::RuleCombine { expr } => {
                let mut names = Vec::new();
                expr.names(&mut names);
                Work::Rule { combines: names }
            }
        };
        ScheduledModel {
            name: spec.name.clone(),
            family: family.to_string(),
            feature_set: spec.feature_set.clone(),
            work,
            schedule: spec.schedule.clone(),
        }
    }
}
