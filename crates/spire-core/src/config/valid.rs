//! Validated configuration: only these types reach the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use super::raw::*;
use super::scheduling::SchedulerConfig;
use super::segments::{validate_segment, SegmentSpec};
use super::Issues;
use crate::schema::event_field;

/// A validated project.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// Project name.
    pub name: String,
    /// Where things are stored.
    pub storage: Storage,
    /// Sources, by unique name.
    pub sources: Vec<Source>,
    /// Intake rules.
    pub intake: Intake,
    /// Cleaning rules.
    pub cleaning: Cleaning,
    /// Feature sets, by unique name.
    pub feature_sets: Vec<FeatureSet>,
    /// Defaults for segment specs.
    pub defaults: Defaults,
    /// Segment specs (templates: `for_each` is expanded by the pipeline).
    pub segments: Vec<SegmentSpec>,
    /// Scheduler limits and pools (`[scheduler]`).
    pub scheduler: SchedulerConfig,
    /// SHA-256 of the effective configuration, recorded on every run.
    pub config_hash: String,
}

impl Project {
    /// The feature set called `name`.
    pub fn feature_set(&self, name: &str) -> Option<&FeatureSet> {
        self.feature_sets.iter().find(|f| f.name == name)
    }

    /// The source called `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// Storage locations, resolved against the project folder.
#[derive(Debug, Clone)]
pub struct Storage {
    /// Lake root: a local folder path or an object-store URL.
    pub lake: String,
    /// Registry URL (`sqlite://...`).
    pub registry: String,
    /// Artifact root: a local folder path, `file:///PATH` or `s3://BUCKET[/PREFIX]`.
    pub artifacts: String,
    /// Object-store settings for the artifact root (`[storage.artifact_options]`), e.g.
    /// `endpoint`, `region`, `allow_http`; they override the `AWS_*` environment variables.
    pub artifact_options: BTreeMap<String, String>,
}

/// A validated source.
#[derive(Debug, Clone)]
pub struct Source {
    /// Unique name.
    pub name: String,
    /// Kind-specific settings.
    pub kind: SourceKind,
    /// Canonical field → source field (plain name or JSON pointer).
    pub fields: Vec<(String, String)>,
    /// Streams: the source `spire ingest --follow` reads while this one does not answer.
    pub fallback: Option<Fallback>,
}

/// A stream's fallback: another stream source carrying the same events (Kafka primary,
/// Kinesis fallback, as mirrored deployments run them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// The fallback source's name.
    pub source: String,
    /// Seconds without a successful fetch from the primary before switching to it.
    pub after_secs: u64,
}

/// Source kinds.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// Files matched by a glob.
    File {
        /// Absolute glob pattern.
        pattern: String,
        /// Forced format, or `None` to use each file's extension.
        format: Option<FileFormat>,
    },
    /// The built-in clickstream generator.
    Synthetic(SyntheticSettings),
    /// Kafka topics, read as a consumer group.
    Kafka(KafkaSettings),
    /// An Amazon Kinesis data stream, every shard.
    Kinesis(KinesisSettings),
}

impl SourceKind {
    /// Whether the source is an unbounded stream (`spire ingest --follow` applies).
    pub fn is_stream(&self) -> bool {
        matches!(self, SourceKind::Kafka(_) | SourceKind::Kinesis(_))
    }
}

/// Where a Kafka partition the lake has never seen starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record the broker still holds.
    Earliest,
    /// Only records produced after the partition is first assigned.
    Latest,
}

/// Settings of a Kafka source.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// Bootstrap servers.
    pub brokers: String,
    /// Topics.
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Start of a partition without a position in the lake.
    pub start_from: StartFrom,
    /// Longest wait for a batch to fill once it has a record, in milliseconds.
    pub batch_max_wait_ms: u64,
    /// Payload bytes that close a batch.
    pub batch_max_bytes: u64,
    /// librdkafka settings passed through (security and tuning).
    pub options: BTreeMap<String, String>,
}

/// Settings of a Kinesis source.
#[derive(Debug, Clone, PartialEq)]
pub struct KinesisSettings {
    /// Stream name.
    pub stream: String,
    /// AWS region; `None`: from the environment (`AWS_REGION`, the AWS config files).
    pub region: Option<String>,
    /// Service URL of a Kinesis-compatible server; `None`: AWS's endpoint for the region.
    pub endpoint: Option<String>,
    /// Start of a shard without a position in the lake (`TRIM_HORIZON` or `LATEST`).
    pub start_from: StartFrom,
    /// Longest wait for a batch to fill once it has a record, in milliseconds.
    pub batch_max_wait_ms: u64,
    /// Payload bytes that close a batch.
    pub batch_max_bytes: u64,
}

/// librdkafka settings Spire sets itself: exactly-once intake depends on them, so a source
/// may not override them in `options`.
pub const KAFKA_RESERVED_OPTIONS: &[&str] = &[
    "bootstrap.servers",
    "metadata.broker.list",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "auto.offset.reset",
    "enable.partition.eof",
    "partition.assignment.strategy",
    "group.protocol",
];

/// File formats the file source reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// One JSON object per line.
    JsonLines,
    /// Apache Parquet.
    Parquet,
}

impl FileFormat {
    /// Parses `jsonl`/`json`/`ndjson` or `parquet`.
    pub fn parse(text: &str) -> Option<FileFormat> {
        match text.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Some(FileFormat::JsonLines),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            _ => None,
        }
    }
}

/// Settings of the synthetic clickstream.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntheticSettings {
    /// Number of users.
    pub users: u64,
    /// Days of traffic.
    pub days: u32,
    /// Random seed.
    pub seed: u64,
    /// First day of traffic.
    pub start_date: NaiveDate,
}

/// Intake rules.
#[derive(Debug, Clone)]
pub struct Intake {
    /// Future-skew limit in seconds.
    pub max_future_skew_secs: i64,
    /// Record size limit in bytes.
    pub max_record_bytes: u64,
    /// Rows per Delta commit.
    pub batch_rows: usize,
}

/// Cleaning rules.
#[derive(Debug, Clone)]
pub struct Cleaning {
    /// Bot user-agent regular expressions (validated).
    pub bot_user_agent_patterns: Vec<String>,
    /// Per-user per-minute event limit.
    pub max_events_per_user_per_minute: u32,
}

/// The aggregations a feature set can compute per window.
pub const AGGREGATIONS: &[&str] = &[
    "events",
    "active_days",
    "sessions",
    "distinct_content",
    "mean_dwell",
    "days_since_last",
    "category_counts",
    "brand_counts",
];

/// A validated feature set.
#[derive(Debug, Clone)]
pub struct FeatureSet {
    /// Name; table `features_<name>`.
    pub name: String,
    /// Windows in days, ascending.
    pub windows_days: Vec<u32>,
    /// Aggregations (subset of [`AGGREGATIONS`]).
    pub aggregations: Vec<String>,
    /// Configured categories, or `None` to discover.
    pub categories: Option<Vec<String>>,
    /// Configured brands, or `None` to discover.
    pub brands: Option<Vec<String>>,
    /// Discovery limit.
    pub max_discovered_values: usize,
    /// Lateness allowance in hours.
    pub lateness_hours: u32,
    /// Session gap.
    pub session_gap_secs: u32,
    /// SQL transforms `(name, query)`.
    pub sql: Vec<(String, String)>,
    /// Hash of the definition: a new hash means a new feature-set version.
    pub definition_hash: String,
}

impl FeatureSet {
    /// The longest window.
    pub fn max_window_days(&self) -> u32 {
        self.windows_days.iter().copied().max().unwrap_or(1)
    }

    /// Whether an aggregation is enabled.
    pub fn has(&self, aggregation: &str) -> bool {
        self.aggregations.iter().any(|a| a == aggregation)
    }
}

/// Defaults for segment specs.
#[derive(Debug, Clone)]
pub struct Defaults {
    /// Held-out fraction.
    pub test_fraction: f64,
    /// Seed.
    pub seed: u64,
}

/// The default bot user-agent patterns.
pub fn default_bot_patterns() -> Vec<String> {
    [
        r"(?i)bot\b|bot/|crawler|spider|slurp",
        r"(?i)headless|phantomjs|selenium|puppeteer",
        r"(?i)^(curl|wget|python-requests|python-urllib|go-http-client|java/|okhttp|libwww)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn resolve(dir: &Path, value: &str) -> String {
    if value.contains("://") || Path::new(value).is_absolute() {
        value.to_string()
    } else {
        dir.join(value).to_string_lossy().into_owned()
    }
}

pub(super) fn validate(
    dir: &Path,
    file: &Path,
    raw: RawProject,
    segment_files: Vec<(PathBuf, RawSegmentFile)>,
    issues: &mut Issues,
) -> Project {
    let effective = toml::to_string(&raw).unwrap_or_default();
    let storage = Storage {
        lake: resolve(
            dir,
            raw.storage.lake.as_deref().unwrap_or("spire-data/lake"),
        ),
        registry: match raw.storage.registry.as_deref() {
            None => format!("sqlite://{}", dir.join("spire-data/spire.db").display()),
            Some(url) if url.starts_with("sqlite://") && !url.starts_with("sqlite:///") => {
                let rest = &url["sqlite://".len()..];
                if Path::new(rest).is_absolute() || rest.starts_with(":memory:") {
                    url.to_string()
                } else {
                    format!("sqlite://{}", dir.join(rest).display())
                }
            }
            Some(url) => url.to_string(),
        },
        artifacts: resolve(
            dir,
            raw.storage
                .artifacts
                .as_deref()
                .unwrap_or("spire-data/artifacts"),
        ),
        artifact_options: raw.storage.artifact_options.clone(),
    };
    match storage.artifacts.split_once("://") {
        Some((scheme, _)) if scheme != "file" && scheme != "s3" => issues.push(
            file,
            "storage.artifacts",
            format!(
                "unsupported artifact location {:?}: use a folder, file:///PATH or \
                 s3://BUCKET[/PREFIX]",
                storage.artifacts
            ),
        ),
        Some(("s3", _)) => {}
        _ if !storage.artifact_options.is_empty() => issues.push(
            file,
            "storage.artifact_options",
            "object-store options only apply to an s3:// artifact location; remove them or \
             set storage.artifacts to s3://BUCKET[/PREFIX]",
        ),
        _ => {}
    }

    let mut sources = Vec::new();
    let mut names = BTreeSet::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let key = |k: &str| format!("sources[{i}].{k}");
        let Some(name) = s.name.clone() else {
            issues.push(
                file,
                key("name"),
                "missing: every source needs a unique name",
            );
            continue;
        };
        if !names.insert(name.clone()) {
            issues.push(
                file,
                key("name"),
                format!("`{name}` is used by another source"),
            );
        }
        let mut fields = Vec::new();
        for (canonical, from) in &s.fields {
            if event_field(canonical).is_none() {
                issues.push(
                    file,
                    key(&format!("fields.{canonical}")),
                    "not a canonical event field (event_id, user_id, ts, event_type, brand, category, content_id, url, referrer, user_agent, device, country, dwell_ms, received_at)",
                );
            }
            if from.starts_with('/') && from.len() < 2 {
                issues.push(
                    file,
                    key(&format!("fields.{canonical}")),
                    "empty JSON pointer",
                );
            }
            fields.push((canonical.clone(), from.clone()));
        }
        let kind = match s.kind.as_deref() {
            Some("file") => {
                let Some(path) = &s.path else {
                    issues.push(
                        file,
                        key("path"),
                        "missing: a file source needs `path` (a file or glob)",
                    );
                    continue;
                };
                let format = match s.format.as_deref() {
                    None => None,
                    Some(f) => match FileFormat::parse(f) {
                        Some(ff) => Some(ff),
                        None => {
                            issues.push(
                                file,
                                key("format"),
                                format!("`{f}`: expected `jsonl` or `parquet`"),
                            );
                            None
                        }
                    },
                };
                SourceKind::File {
                    pattern: resolve(dir, path),
                    format,
                }
            }
            Some("synthetic") => {
                let users = s.users.unwrap_or(10_000);
                if users == 0 || users > 100_000_000 {
                    issues.push(
                        file,
                        key("users"),
                        format!("{users}: must be in 1..=100000000"),
                    );
                }
                let days = s.days.unwrap_or(30);
                if days == 0 || days > 3650 {
                    issues.push(file, key("days"), format!("{days}: must be in 1..=3650"));
                }
                let start_date = match &s.start_date {
                    Some(d) => crate::time::parse_date(d).unwrap_or_else(|e| {
                        issues.push(file, key("start_date"), e);
                        NaiveDate::MIN
                    }),
                    None => {
                        chrono::Utc::now().date_naive() - chrono::Duration::days(i64::from(days))
                    }
                };
                SourceKind::Synthetic(SyntheticSettings {
                    users,
                    days,
                    seed: s.seed.unwrap_or(42),
                    start_date,
                })
            }
            Some("kafka") => {
                let brokers = s.brokers.clone().unwrap_or_default();
                if brokers.trim().is_empty() {
                    issues.push(
                        file,
                        key("brokers"),
                        "missing: a kafka source needs `brokers` (host:port[,host:port…])",
                    );
                }
                let topics = s.topics.clone().unwrap_or_default();
                if topics.is_empty() || topics.iter().any(|t| t.trim().is_empty()) {
                    issues.push(
                        file,
                        key("topics"),
                        "missing: a kafka source needs `topics`, a list of topic names",
                    );
                }
                let (start_from, batch_max_wait_ms, batch_max_bytes) =
                    stream_batching(s, issues, file, &key);
                for k in s.options.keys() {
                    if KAFKA_RESERVED_OPTIONS.contains(&k.as_str()) {
                        issues.push(
                            file,
                            key(&format!("options.{k}")),
                            "Spire sets this itself (exactly-once intake depends on it); use \
                             `brokers`, `group_id` or `start_from` instead, or remove it",
                        );
                    }
                }
                SourceKind::Kafka(KafkaSettings {
                    brokers,
                    topics,
                    group_id: s
                        .group_id
                        .clone()
                        .unwrap_or_else(|| format!("spire-{name}")),
                    start_from,
                    batch_max_wait_ms,
                    batch_max_bytes,
                    options: s.options.clone(),
                })
            }
            Some("kinesis") => {
                let stream = s.stream.clone().unwrap_or_default();
                if stream.trim().is_empty() {
                    issues.push(
                        file,
                        key("stream"),
                        "missing: a kinesis source needs `stream`, the data stream's name",
                    );
                }
                if let Some(endpoint) = &s.endpoint {
                    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                        issues.push(
                            file,
                            key("endpoint"),
                            format!("`{endpoint}`: expected an http:// or https:// URL"),
                        );
                    }
                }
                if !s.options.is_empty() {
                    issues.push(
                        file,
                        key("options"),
                        "kinesis sources take no `options`; credentials come from the \
                         environment (AWS_ACCESS_KEY_ID, AWS_PROFILE, …)",
                    );
                }
                let (start_from, batch_max_wait_ms, batch_max_bytes) =
                    stream_batching(s, issues, file, &key);
                SourceKind::Kinesis(KinesisSettings {
                    stream,
                    region: s.region.clone(),
                    endpoint: s.endpoint.clone(),
                    start_from,
                    batch_max_wait_ms,
                    batch_max_bytes,
                })
            }
            Some(other) => {
                issues.push(
                    file,
                    key("kind"),
                    format!("`{other}`: expected `file`, `kafka`, `kinesis` or `synthetic`"),
                );
                continue;
            }
            None => {
                issues.push(
                    file,
                    key("kind"),
                    "missing: expected `file`, `kafka`, `kinesis` or `synthetic`",
                );
                continue;
            }
        };
        let fallback = match (&s.fallback, s.failover_after_secs) {
            (None, None) => None,
            (None, Some(_)) => {
                issues.push(
                    file,
                    key("failover_after_secs"),
                    "set without `fallback`: name the source to switch to",
                );
                None
            }
            (Some(f), after) => {
                if !kind.is_stream() {
                    issues.push(
                        file,
                        key("fallback"),
                        "only stream sources (kafka, kinesis) fail over; remove it",
                    );
                }
                let after_secs = after.unwrap_or(30);
                if !(1..=86_400).contains(&after_secs) {
                    issues.push(
                        file,
                        key("failover_after_secs"),
                        format!("{after_secs}: must be in 1..=86400"),
                    );
                }
                Some(Fallback {
                    source: f.clone(),
                    after_secs,
                })
            }
        };
        sources.push(Source {
            name,
            kind,
            fields,
            fallback,
        });
    }
    // A fallback must be another stream source of this project.
    for s in &sources {
        let Some(f) = &s.fallback else { continue };
        let i = raw
            .sources
            .iter()
            .position(|r| r.name.as_deref() == Some(s.name.as_str()))
            .unwrap_or_default();
        let key = format!("sources[{i}].fallback");
        match sources.iter().find(|o| o.name == f.source) {
            None => issues.push(
                file,
                key,
                format!("`{}`: no source has this name", f.source),
            ),
            Some(o) if o.name == s.name => {
                issues.push(file, key, "a source cannot be its own fallback")
            }
            Some(o) if !o.kind.is_stream() => issues.push(
                file,
                key,
                format!("`{}` is not a stream (kafka or kinesis) source", f.source),
            ),
            Some(_) => {}
        }
    }

    let intake = Intake {
        max_future_skew_secs: raw.intake.max_future_skew_secs.unwrap_or(300),
        max_record_bytes: raw.intake.max_record_bytes.unwrap_or(1 << 20),
        batch_rows: raw.intake.batch_rows.unwrap_or(500_000),
    };
    if intake.max_future_skew_secs < 0 {
        issues.push(file, "intake.max_future_skew_secs", "must be >= 0");
    }
    if intake.batch_rows == 0 {
        issues.push(file, "intake.batch_rows", "must be >= 1");
    }

    let patterns = raw
        .cleaning
        .bot_user_agent_patterns
        .clone()
        .unwrap_or_else(default_bot_patterns);
    for (i, p) in patterns.iter().enumerate() {
        if let Err(e) = regex_syntax_check(p) {
            issues.push(file, format!("cleaning.bot_user_agent_patterns[{i}]"), e);
        }
    }
    let cleaning = Cleaning {
        bot_user_agent_patterns: patterns,
        max_events_per_user_per_minute: raw.cleaning.max_events_per_user_per_minute.unwrap_or(30),
    };
    if cleaning.max_events_per_user_per_minute == 0 {
        issues.push(
            file,
            "cleaning.max_events_per_user_per_minute",
            "must be >= 1",
        );
    }

    let mut feature_sets = Vec::new();
    let mut fs_names = BTreeSet::new();
    for (i, f) in raw.feature_sets.iter().enumerate() {
        let key = |k: &str| format!("feature_sets[{i}].{k}");
        let Some(name) = f.name.clone() else {
            issues.push(file, key("name"), "missing: every feature set needs a name");
            continue;
        };
        if !is_identifier(&name) {
            issues.push(
                file,
                key("name"),
                format!("`{name}`: use lowercase letters, digits and `_`"),
            );
        }
        if !fs_names.insert(name.clone()) {
            issues.push(
                file,
                key("name"),
                format!("`{name}` is used by another feature set"),
            );
        }
        let mut windows = f.windows_days.clone().unwrap_or_else(|| vec![1, 7, 28]);
        windows.sort_unstable();
        windows.dedup();
        if windows.is_empty() || windows.iter().any(|w| *w == 0 || *w > 366) {
            issues.push(
                file,
                key("windows_days"),
                "each window must be in 1..=366 days, at least one",
            );
        }
        let aggregations = f
            .aggregations
            .clone()
            .unwrap_or_else(|| AGGREGATIONS.iter().map(|s| s.to_string()).collect());
        for a in &aggregations {
            if !AGGREGATIONS.contains(&a.as_str()) {
                issues.push(
                    file,
                    key("aggregations"),
                    format!("`{a}`: expected one of {}", AGGREGATIONS.join(", ")),
                );
            }
        }
        let mut sql = Vec::new();
        for (j, t) in f.sql.iter().enumerate() {
            match (&t.name, &t.query) {
                (Some(n), Some(q)) if !q.trim().is_empty() => sql.push((n.clone(), q.clone())),
                _ => issues.push(
                    file,
                    key(&format!("sql[{j}]")),
                    "needs `name` and a non-empty `query`",
                ),
            }
        }
        let lateness_hours = f.lateness_hours.unwrap_or(6);
        if lateness_hours > 24 * 30 {
            issues.push(file, key("lateness_hours"), "must be at most 720 (30 days)");
        }
        let definition_hash = hex_sha256(toml::to_string(f).unwrap_or_default().as_bytes());
        feature_sets.push(FeatureSet {
            name,
            windows_days: windows,
            aggregations,
            categories: f.categories.clone(),
            brands: f.brands.clone(),
            max_discovered_values: f.max_discovered_values.unwrap_or(50).clamp(1, 1000),
            lateness_hours,
            session_gap_secs: f.session_gap_secs.unwrap_or(1800).max(1),
            sql,
            definition_hash,
        });
    }

    let defaults = Defaults {
        test_fraction: raw.defaults.test_fraction.unwrap_or(0.25),
        seed: raw.defaults.seed.unwrap_or(7),
    };
    if !(defaults.test_fraction > 0.0 && defaults.test_fraction < 1.0) {
        issues.push(file, "defaults.test_fraction", "must be in (0, 1)");
    }

    let scheduler = super::scheduling::validate_scheduler(&raw.scheduler, file, issues);
    let pool_names: BTreeSet<String> = scheduler.pools.keys().cloned().collect();
    // The project default is checked on its own, so its mistakes are named in spire.toml.
    super::scheduling::resolve_schedule(None, &raw.schedule, &pool_names, file, "schedule", issues);
    // Segments inherit only the default's valid keys, so a mistake in spire.toml is
    // reported once, there.
    let default_schedule = super::scheduling::valid_keys(&raw.schedule, &pool_names);
    let mut segments: Vec<SegmentSpec> = Vec::new();
    let mut seg_texts = String::new();
    for (path, f) in &segment_files {
        seg_texts.push_str(&toml::to_string(f).unwrap_or_default());
        for (i, s) in f.segment.iter().enumerate() {
            if let Some(mut spec) = validate_segment(path, i, s, &fs_names, issues) {
                spec.schedule = super::scheduling::resolve_schedule(
                    s.schedule.as_ref(),
                    &default_schedule,
                    &pool_names,
                    path,
                    &format!("segment[{i}].schedule"),
                    issues,
                );
                if segments.iter().any(|o| o.name == spec.name) {
                    issues.push(
                        path,
                        format!("segment[{i}].name"),
                        format!("`{}` is declared twice", spec.name),
                    );
                }
                segments.push(spec);
            }
        }
    }
    let all_names: BTreeSet<String> = segments.iter().map(|s| s.name.clone()).collect();
    for s in &segments {
        s.check_references(&all_names, issues);
    }
    super::segments::check_combine_cycles(&segments, issues);

    Project {
        dir: dir.to_path_buf(),
        name: raw
            .project
            .name
            .clone()
            .unwrap_or_else(|| "spire".to_string()),
        storage,
        sources,
        intake,
        cleaning,
        feature_sets,
        defaults,
        scheduler,
        segments,
        config_hash: hex_sha256(format!("{effective}\n{seg_texts}").as_bytes()),
    }
}

/// The settings Kafka and Kinesis sources share: where a new partition starts and when a
/// batch closes.
fn stream_batching(
    s: &RawSource,
    issues: &mut Issues,
    file: &Path,
    key: &dyn Fn(&str) -> String,
) -> (StartFrom, u64, u64) {
    let start_from = match s.start_from.as_deref() {
        None | Some("earliest") => StartFrom::Earliest,
        Some("latest") => StartFrom::Latest,
        Some(other) => {
            issues.push(
                file,
                key("start_from"),
                format!("`{other}`: expected `earliest` or `latest`"),
            );
            StartFrom::Earliest
        }
    };
    let batch_max_wait_ms = s.batch_max_wait_ms.unwrap_or(1000);
    if !(1..=600_000).contains(&batch_max_wait_ms) {
        issues.push(
            file,
            key("batch_max_wait_ms"),
            format!("{batch_max_wait_ms}: must be in 1..=600000"),
        );
    }
    let batch_max_bytes = s.batch_max_bytes.unwrap_or(64 << 20);
    if batch_max_bytes == 0 {
        issues.push(file, key("batch_max_bytes"), "must be >= 1");
    }
    (start_from, batch_max_wait_ms, batch_max_bytes)
}

/// Lowercase ASCII letters, digits and `_`, starting with a letter.
pub fn is_identifier(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Hex SHA-256 of bytes.
pub fn hex_sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn regex_syntax_check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern)
        .map(|_| ())
        .map_err(|e| format!("`{pattern}` is not a valid regular expression: {e}"))
}
