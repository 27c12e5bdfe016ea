//! A segment's lifecycle as a DAG of stages, and how the stages of everything due at one
//! time are batched into tasks the way the data is shared.
//!
//! Every model segment goes through the same eight stages: features snapshot → dataset →
//! train → evaluate → gate → score → threshold → publish (a rule skips dataset to gate).
//! Running them per model would reload one feature matrix thousands of times, so
//! [`plan`] batches them:
//!
//! - one `snapshot` task per feature set and as-of date (shared by every run that day);
//! - one `train` task per feature set, run time and pool for the models that train fused
//!   (logistic regression), and one per model for the others (dataset → train → evaluate
//!   → gate);
//! - one `score` task per feature set and run time (score → threshold for all its segments);
//! - one `publish` task per run time (combined rules, then the `segments` table).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{ScheduledModel, Work};

/// One stage of a segment's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Write the feature snapshot the segment reads.
    Snapshot,
    /// Build the point-in-time training set.
    Dataset,
    /// Fit the model.
    Train,
    /// Evaluate on held-out users.
    Evaluate,
    /// Register the version; move `champion` if the gate passes.
    Gate,
    /// Score every eligible user with the champion.
    Score,
    /// Apply the output policy (top fraction, minimum score, size, precision).
    Threshold,
    /// Write the segment memberships.
    Publish,
}

impl Stage {
    /// The stage's name as shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Snapshot => "features snapshot",
            Stage::Dataset => "dataset",
            Stage::Train => "train",
            Stage::Evaluate => "evaluate",
            Stage::Gate => "gate",
            Stage::Score => "score",
            Stage::Threshold => "threshold",
            Stage::Publish => "publish",
        }
    }
}

/// The stages of one segment, in order (each depends on the one before).
pub fn stages_of(model: &ScheduledModel) -> Vec<Stage> {
    match &model.work {
        Work::Model { .. } => vec![
            Stage::Snapshot,
            Stage::Dataset,
            Stage::Train,
            Stage::Evaluate,
            Stage::Gate,
            Stage::Score,
            Stage::Threshold,
            Stage::Publish,
        ],
        Work::Rule { combines } if !combines.is_empty() => vec![Stage::Publish],
        Work::Rule { .. } => vec![
            Stage::Snapshot,
            Stage::Score,
            Stage::Threshold,
            Stage::Publish,
        ],
    }
}

/// What kind of batched task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Feature snapshot of one feature set for one as-of date.
    Snapshot,
    /// Dataset, train, evaluate and gate for a fused family or one model.
    Train,
    /// Score and threshold every segment of one feature set.
    Score,
    /// Combined rules and the segments table.
    Publish,
}

impl TaskKind {
    /// The kind's name as stored in the task queue.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::Snapshot => "snapshot",
            TaskKind::Train => "train",
            TaskKind::Score => "score",
            TaskKind::Publish => "publish",
        }
    }

    /// The lifecycle stages one task of this kind runs.
    pub fn stages(self) -> &'static [Stage] {
        match self {
            TaskKind::Snapshot => &[Stage::Snapshot],
            TaskKind::Train => &[Stage::Dataset, Stage::Train, Stage::Evaluate, Stage::Gate],
            TaskKind::Score => &[Stage::Score, Stage::Threshold],
            TaskKind::Publish => &[Stage::Publish],
        }
    }
}

/// A segment due at a run time.
#[derive(Debug, Clone, Copy)]
pub struct Due<'a> {
    /// The segment.
    pub model: &'a ScheduledModel,
    /// The scheduled (logical) time of the run.
    pub logical_time: DateTime<Utc>,
}

/// One batched task of a [`Plan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedTask {
    /// Kind.
    pub kind: TaskKind,
    /// What it covers: a feature set, `FEATURE_SET/fused`, `FEATURE_SET/SEGMENT`, or
    /// `segments` (publish). With `kind` and `logical_time` it identifies the task.
    pub key: String,
    /// The run time it belongs to (for snapshots: midnight UTC of the as-of date, so runs
    /// of one day share it).
    pub logical_time: DateTime<Utc>,
    /// The as-of date the data is read at.
    pub as_of: NaiveDate,
    /// The segments it serves, by name.
    pub segments: Vec<String>,
    /// Tasks (indices into [`Plan::tasks`]) that must succeed first.
    pub depends_on: Vec<usize>,
    /// Concurrency pool.
    pub pool: Option<String>,
    /// Priority (the highest of its segments).
    pub priority: i32,
    /// Attempts allowed (1 + the most retries any of its segments allows).
    pub max_attempts: u32,
    /// First retry delay in seconds.
    pub retry_backoff_secs: u64,
    /// Attempt timeout in seconds (the longest of its segments').
    pub timeout_secs: u64,
}

impl PlannedTask {
    /// `kind[key]`, e.g. `train[behaviour/fused]`.
    pub fn label(&self) -> String {
        format!("{}[{}]", self.kind.as_str(), self.key)
    }
}

/// The batched tasks for a set of due segments, dependencies before dependents.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Plan {
    /// The tasks; every task's dependencies come before it.
    pub tasks: Vec<PlannedTask>,
}

/// The as-of date of a run: the local date of its logical time in the segment's schedule
/// zone (UTC for unscheduled segments).
pub fn as_of(model: &ScheduledModel, logical_time: DateTime<Utc>) -> NaiveDate {
    match &model.schedule.schedule {
        Some(s) => s.local_date(logical_time),
        None => logical_time.date_naive(),
    }
}

struct Builder {
    tasks: Vec<PlannedTask>,
    index: BTreeMap<(TaskKind, String, DateTime<Utc>), usize>,
}

impl Builder {
    /// The task `(kind, key, time)`, created on first use; `model` joins it.
    fn task(
        &mut self,
        kind: TaskKind,
        key: String,
        logical_time: DateTime<Utc>,
        as_of: NaiveDate,
        model: &ScheduledModel,
        pool: Option<String>,
    ) -> usize {
        let s = &model.schedule;
        let id = (kind, key.clone(), logical_time);
        let i = *self.index.entry(id).or_insert_with(|| {
            self.tasks.push(PlannedTask {
                kind,
                key,
                logical_time,
                as_of,
                segments: Vec::new(),
                depends_on: Vec::new(),
                pool,
                priority: s.priority,
                max_attempts: s.retries + 1,
                retry_backoff_secs: s.retry_backoff_secs,
                timeout_secs: s.timeout_secs,
            });
            self.tasks.len() - 1
        });
        let t = &mut self.tasks[i];
        if !t.segments.contains(&model.name) {
            t.segments.push(model.name.clone());
        }
        t.priority = t.priority.max(s.priority);
        t.max_attempts = t.max_attempts.max(s.retries + 1);
        t.retry_backoff_secs = t.retry_backoff_secs.max(s.retry_backoff_secs);
        t.timeout_secs = t.timeout_secs.max(s.timeout_secs);
        i
    }

    fn depend(&mut self, task: usize, on: usize) {
        if task != on && !self.tasks[task].depends_on.contains(&on) {
            self.tasks[task].depends_on.push(on);
        }
    }
}

/// Batches the stages of every due segment into tasks (see the module docs).
pub fn plan(due: &[Due<'_>]) -> Plan {
    let mut b = Builder {
        tasks: Vec::new(),
        index: BTreeMap::new(),
    };
    // Snapshots and trainings first, then scores, then publishes, so dependencies always
    // point backwards.
    let mut scores = Vec::new();
    for d in due {
        let m = d.model;
        let as_of = as_of(m, d.logical_time);
        let combines = matches!(&m.work, Work::Rule { combines } if !combines.is_empty());
        if combines {
            continue;
        }
        let midnight = as_of.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        let snapshot = b.task(
            TaskKind::Snapshot,
            m.feature_set.clone(),
            midnight,
            as_of,
            m,
            None,
        );
        let train = match &m.work {
            Work::Model { fusable: true, .. } => {
                let key = match &m.schedule.pool {
                    Some(pool) => format!("{}/fused@{pool}", m.feature_set),
                    None => format!("{}/fused", m.feature_set),
                };
                Some(b.task(
                    TaskKind::Train,
                    key,
                    d.logical_time,
                    as_of,
                    m,
                    m.schedule.pool.clone(),
                ))
            }
            Work::Model { .. } => Some(b.task(
                TaskKind::Train,
                format!("{}/{}", m.feature_set, m.name),
                d.logical_time,
                as_of,
                m,
                m.schedule.pool.clone(),
            )),
            Work::Rule { .. } => None,
        };
        if let Some(t) = train {
            b.depend(t, snapshot);
        }
        scores.push((d, as_of, snapshot, train));
    }
    let mut publishes = Vec::new();
    for (d, as_of, snapshot, train) in scores {
        let m = d.model;
        let score = b.task(
            TaskKind::Score,
            m.feature_set.clone(),
            d.logical_time,
            as_of,
            m,
            None,
        );
        b.depend(score, snapshot);
        if let Some(t) = train {
            b.depend(score, t);
        }
        publishes.push(*d);
    }
    publishes.extend(
        due.iter()
            .filter(|d| matches!(&d.model.work, Work::Rule { combines } if !combines.is_empty())),
    );
    // A run's publish waits for every score task of that run time, including ones only the
    // combined rules read.
    let mut scores_at: BTreeMap<DateTime<Utc>, Vec<usize>> = BTreeMap::new();
    for (i, t) in b.tasks.iter().enumerate() {
        if t.kind == TaskKind::Score {
            scores_at.entry(t.logical_time).or_default().push(i);
        }
    }
    for d in publishes {
        let m = d.model;
        let publish = b.task(
            TaskKind::Publish,
            "segments".into(),
            d.logical_time,
            as_of(m, d.logical_time),
            m,
            None,
        );
        for &score in scores_at.get(&d.logical_time).into_iter().flatten() {
            b.depend(publish, score);
        }
    }
    Plan { tasks: b.tasks }
}

/// `spire dag SEGMENT` as text: the segment's stages, then the batched tasks that run them.
pub fn render_text(model: &ScheduledModel, plan: &Plan) -> String {
    let mut out = String::new();
    let what = match &model.work {
        Work::Model { algorithm, .. } => format!("model, {algorithm}"),
        Work::Rule { combines } if !combines.is_empty() => {
            format!("rule combining {}", combines.join(", "))
        }
        Work::Rule { .. } => "rule".into(),
    };
    let _ = writeln!(
        out,
        "{} ({what}; family {}; feature set {})",
        model.name, model.family, model.feature_set
    );
    let s = &model.schedule;
    let when = s
        .schedule
        .as_ref()
        .map_or("on demand only (no cron)".to_string(), |c| c.to_string());
    let _ = writeln!(
        out,
        "schedule: {when}; catch-up {:?}; retries {} (backoff {} s, doubling); timeout {} s; \
         priority {}; pool {}",
        s.catchup,
        s.retries,
        s.retry_backoff_secs,
        s.timeout_secs,
        s.priority,
        s.pool.as_deref().unwrap_or("-")
    );
    let stages: Vec<&str> = stages_of(model).iter().map(|s| s.label()).collect();
    let _ = writeln!(out, "stages: {}", stages.join(" → "));
    let _ = writeln!(
        out,
        "tasks (batched with every segment due at the same time):"
    );
    for t in plan
        .tasks
        .iter()
        .filter(|t| t.segments.contains(&model.name))
    {
        let stages: Vec<&str> = t.kind.stages().iter().map(|s| s.label()).collect();
        let deps: Vec<String> = t
            .depends_on
            .iter()
            .map(|&d| plan.tasks[d].label())
            .collect();
        let _ = writeln!(
            out,
            "  {:<32} {:<36} {} segment(s){}",
            t.label(),
            stages.join(" → "),
            t.segments.len(),
            if deps.is_empty() {
                String::new()
            } else {
                format!("; after {}", deps.join(", "))
            }
        );
    }
    out
}

/// `spire dag SEGMENT --dot`: the segment's batched tasks as a Graphviz digraph, each task a
/// cluster of its stages.
pub fn render_dot(model: &ScheduledModel, plan: &Plan) -> String {
    let mut out = String::from("digraph spire {\n  rankdir=LR;\n  node [shape=box];\n");
    let mine: Vec<usize> = (0..plan.tasks.len())
        .filter(|&i| plan.tasks[i].segments.contains(&model.name))
        .collect();
    for &i in &mine {
        let t = &plan.tasks[i];
        let _ = writeln!(
            out,
            "  subgraph cluster_{i} {{\n    label=\"{} ({} segment(s))\";",
            t.label(),
            t.segments.len()
        );
        let stages = t.kind.stages();
        for s in stages {
            let _ = writeln!(out, "    t{i}_{s:?} [label=\"{}\"];", s.label());
        }
        for w in stages.windows(2) {
            let _ = writeln!(out, "    t{i}_{:?} -> t{i}_{:?};", w[0], w[1]);
        }
        out.push_str("  }\n");
    }
    for &i in &mine {
        let t = &plan.tasks[i];
        let first = t.kind.stages()[0];
        for &d in &t.depends_on {
            if mine.contains(&d) {
                let dep = &plan.tasks[d];
                let last = dep.kind.stages()[dep.kind.stages().len() - 1];
                let _ = writeln!(out, "  t{d}_{last:?} -> t{i}_{first:?};");
            }
        }
    }
    out.push_str("}\n");
    out
}
