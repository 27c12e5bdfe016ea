//! The raw, deserialized form of `spire.toml` and `segments/*.toml` (before validation).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use super::scheduling::{RawSchedule, RawScheduler};

/// `spire.toml` as written.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProject {
    /// `[project]`.
    #[serde(default)]
    pub project: RawProjectInfo,
    /// `[storage]`.
    #[serde(default)]
    pub storage: RawStorage,
    /// `[[sources]]`.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// `[intake]`.
    #[serde(default)]
    pub intake: RawIntake,
    /// `[cleaning]`.
    #[serde(default)]
    pub cleaning: RawCleaning,
    /// `[[feature_sets]]`.
    #[serde(default)]
    pub feature_sets: Vec<RawFeatureSet>,
    /// `[defaults]`.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// `[schedule]`: the default schedule of every model segment.
    #[serde(default)]
    pub schedule: RawSchedule,
    /// `[scheduler]`: running limits and pools.
    #[serde(default)]
    pub scheduler: RawScheduler,
    /// `[env.NAME]` sections, merged over the root by `--env NAME` (already applied here).
    #[serde(default)]
    pub env: BTreeMap<String, toml::Value>,
}

/// `[project]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawProjectInfo {
    /// Project name, shown in the UI and used as the default experiment prefix.
    pub name: Option<String>,
}

/// `[storage]`: where the lake, the registry and artifacts live.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    /// Lake folder or URL (default `spire-data/lake`).
    pub lake: Option<String>,
    /// Registry URL (default `sqlite://spire-data/spire.db`).
    pub registry: Option<String>,
    /// Artifact folder or URL (default `spire-data/artifacts`; `s3://BUCKET/PREFIX` for
    /// S3-compatible storage).
    pub artifacts: Option<String>,
    /// Object-store settings for an `s3://` artifact root (`endpoint`, `region`,
    /// `allow_http`, …), overriding the `AWS_*` environment variables.
    #[serde(default)]
    pub artifact_options: BTreeMap<String, String>,
}

/// One `[[sources]]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Unique source name; recorded in every row's position.
    pub name: Option<String>,
    /// `file`, `kafka`, `kinesis` or `synthetic`.
    pub kind: Option<String>,
    /// file: a path or glob, relative to the project folder.
    pub path: Option<String>,
    /// file: `jsonl` or `parquet` (default: from the extension).
    pub format: Option<String>,
    /// Canonical field → source field name or JSON pointer (`/a/b`).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// synthetic: number of users.
    pub users: Option<u64>,
    /// synthetic: number of days of traffic.
    pub days: Option<u32>,
    /// synthetic: random seed.
    pub seed: Option<u64>,
    /// synthetic: first day of traffic (default: `days` before today).
    pub start_date: Option<String>,
    /// kafka: bootstrap servers, `host:port[,host:port…]`.
    pub brokers: Option<String>,
    /// kafka: topics to consume.
    pub topics: Option<Vec<String>>,
    /// kafka: consumer group (default `spire-<name>`).
    pub group_id: Option<String>,
    /// kafka, kinesis: where a partition (shard) the lake has never seen starts:
    /// `earliest` (default) or `latest`.
    pub start_from: Option<String>,
    /// kafka, kinesis: the longest a batch waits for more records once its first record
    /// arrived (milliseconds, default 1000).
    pub batch_max_wait_ms: Option<u64>,
    /// kafka, kinesis: a batch is committed once its payloads reach this many bytes
    /// (default 64 MiB).
    pub batch_max_bytes: Option<u64>,
    /// kafka, kinesis: another stream source carrying the same events, read by
    /// `spire ingest --follow` while this one does not answer.
    pub fallback: Option<String>,
    /// With `fallback`: seconds without a successful fetch before switching (default 30).
    pub failover_after_secs: Option<u64>,
    /// kinesis: the stream's name.
    pub stream: Option<String>,
    /// kinesis: the AWS region (default: from the environment, `AWS_REGION`).
    pub region: Option<String>,
    /// kinesis: the service URL, for a Kinesis-compatible server (default: AWS's own).
    pub endpoint: Option<String>,
    /// kafka: extra librdkafka settings passed through as they are (`security.protocol`,
    /// `sasl.mechanisms`, `sasl.username`, `ssl.ca.location`, …).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// `[intake]`: per-record parsing rules.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntake {
    /// Events whose `ts` is further than this in the future are dead-lettered (default 300).
    pub max_future_skew_secs: Option<i64>,
    /// Records larger than this are dead-lettered (default 1 MiB).
    pub max_record_bytes: Option<u64>,
    /// Rows per Delta commit (default 500,000).
    pub batch_rows: Option<usize>,
}

/// `[cleaning]`: the deterministic `events_raw` → `events` stage.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCleaning {
    /// Regular expressions; an event whose user agent matches one is a bot event.
    pub bot_user_agent_patterns: Option<Vec<String>>,
    /// Users with more events than this in any one minute are bots for that day.
    pub max_events_per_user_per_minute: Option<u32>,
}

/// One `[[feature_sets]]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatureSet {
    /// Unique feature-set name; its table is `features_<name>`.
    pub name: Option<String>,
    /// Window lengths in days (default `[1, 7, 28]`).
    pub windows_days: Option<Vec<u32>>,
    /// Aggregations to compute per window (default: all).
    pub aggregations: Option<Vec<String>>,
    /// Category values that become columns: a list, or absent to discover them.
    pub categories: Option<Vec<String>>,
    /// Brand values that become columns: a list, or absent to discover them.
    pub brands: Option<Vec<String>>,
    /// At most this many discovered values per dimension, the most frequent first (default 50).
    pub max_discovered_values: Option<usize>,
    /// Events arriving up to this many hours after a snapshot's cut-off still count (default 6).
    pub lateness_hours: Option<u32>,
    /// A gap longer than this starts a new session (default 1800).
    pub session_gap_secs: Option<u32>,
    /// `[[feature_sets.sql]]` transforms.
    #[serde(default)]
    pub sql: Vec<RawSqlTransform>,
}

/// A SQL transform: any DataFusion SQL over `events` returning `user_id`-keyed columns.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSqlTransform {
    /// Transform name (for messages).
    pub name: Option<String>,
    /// The query; `events` holds the snapshot's window, already point-in-time filtered.
    pub query: Option<String>,
}

/// `[defaults]` for segment specs.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Held-out fraction of users for evaluation (default 0.25).
    pub test_fraction: Option<f64>,
    /// Seed for splits and controls (default 7).
    pub seed: Option<u64>,
}

/// A `segments/*.toml` file: one or more `[[segment]]` entries.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegmentFile {
    /// The specs.
    #[serde(default)]
    pub segment: Vec<RawSegment>,
}

/// One `[[segment]]` entry (rule or model).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// Name; with `for_each`, must contain `{value}`.
    pub name: Option<String>,
    /// `rule` or `model`.
    pub kind: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Fan-out: `{ values = [...] }` or `{ sql = "SELECT DISTINCT ..." }`.
    pub for_each: Option<RawForEach>,
    /// Feature set the rule or model reads.
    pub feature_set: Option<String>,
    /// rule: SQL predicate over the feature snapshot.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// rule: boolean composition of other segments, e.g. `a AND NOT b`.
    pub combine: Option<String>,
    /// model: the label.
    pub label: Option<RawLabel>,
    /// model: SQL predicate over the feature snapshot selecting who may be in the segment.
    pub eligibility: Option<String>,
    /// model: algorithm and params.
    pub model: Option<RawModel>,
    /// model: promotion gate.
    pub gate: Option<RawGate>,
    /// Output policy.
    pub output: Option<RawOutput>,
    /// When it runs (keys not set here come from `[schedule]` in spire.toml).
    pub schedule: Option<RawSchedule>,
}

/// `for_each` fan-out.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawForEach {
    /// Literal values.
    pub values: Option<Vec<String>>,
    /// A query returning one column of values.
    pub sql: Option<String>,
}

/// A label definition.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabel {
    /// `future_events` or `seed_list`.
    pub kind: Option<String>,
    /// future_events: SQL predicate on events.
    #[serde(rename = "where")]
    pub where_: Option<String>,
    /// future_events: minimum matching events in the horizon (default 1).
    pub min_count: Option<u32>,
    /// future_events: days after `as_of` (default 7).
    pub horizon_days: Option<u32>,
    /// seed_list: CSV of user ids (first column; header optional), relative to the project.
    pub path: Option<String>,
}

/// Model choice.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    /// Algorithm name (`logistic_regression` or `gbdt`).
    pub algorithm: Option<String>,
    /// Params of algorithms other than `logistic_regression` (e.g. `gbdt`'s
    /// `learning_rate`, `n_estimators`), as a table: `[segment.model.params]`.
    pub params: Option<serde_json::Value>,
    /// L2 strength.
    pub l2: Option<f64>,
    /// L1 strength (lasso; with `l2`, elastic net).
    pub l1: Option<f64>,
    /// Iteration limit.
    pub max_iter: Option<usize>,
    /// Hyper-parameter tuning before the final fit.
    pub tune: Option<RawTune>,
    /// `import`: the model file (ONNX, or LightGBM's text model), relative to the project.
    pub file: Option<String>,
    /// `import`: the model's feature names, one per input column, when the file does not
    /// carry them (an ONNX graph with one multi-column input, LightGBM's `Column_N`).
    pub features: Option<Vec<String>>,
}

/// `[segment.model.tune]`: search space and tuner settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawTune {
    /// Parameter → distribution, e.g. `l2 = { log_uniform = [1e-6, 1e-1] }`.
    pub space: Option<crate::tune::SearchSpace>,
    /// Trials (default 20).
    pub trials: Option<usize>,
    /// `tpe` (default) or `random`.
    pub sampler: Option<crate::tune::Sampler>,
    /// Random trials before TPE (default 6).
    pub startup_trials: Option<usize>,
    /// Trials at once (default 2).
    pub parallel: Option<usize>,
    /// Stop hopeless trials early (default true).
    pub prune: Option<bool>,
    /// Cross-validation folds over the training users (default 3).
    pub folds: Option<usize>,
}

/// Gate a new model version must pass to become `champion`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    /// Minimum test ROC AUC.
    pub min_auc: Option<f64>,
}

/// Output policy.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    /// Members are the top fraction of eligible users by score.
    pub top_fraction: Option<f64>,
    /// Members are eligible users scoring at least this.
    pub min_score: Option<f64>,
    /// Members are the this many top-scoring eligible users (an audience size).
    pub target_size: Option<u64>,
    /// Members score at least the threshold that reached this precision on held-out users
    /// when the model was trained (the threshold is versioned with the model).
    pub min_precision: Option<f64>,
    /// Also write every user's score to `scores` (default false).
    pub write_scores: Option<bool>,
}
