//! `spire ingest`: every configured source (or ad-hoc files) → intake → clean → reconcile.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use spire_core::config::{Source as SourceConfig, SourceKind};
use spire_core::time::date_from_days;
use spire_ingest::clean::{self, CleanReport, Reconciliation};
use spire_ingest::intake::{IntakeReport, IntakeSession, RunUntil};
use spire_ingest::replay::ReplayReport;
use spire_ingest::source::PartitionStatus;
use spire_lake::tables::{DEAD_LETTERS, EVENTS_RAW};

use crate::error::{PipelineError, Result};
use crate::progress::Progress;
use crate::workspace::Workspace;

/// What to ingest.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestTarget {
    /// Every source in `spire.toml`.
    All,
    /// The named sources.
    Sources(Vec<String>),
    /// Files matching a path or glob, without editing the config.
    Path(String),
}

/// The outcome of one source.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// Intake counts.
    pub intake: IntakeReport,
    /// `read = accepted + dead_lettered + duplicates`, after cleaning.
    pub reconciliation: Reconciliation,
    /// Streams: each partition's committed position and lag when intake stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionStatus>,
}

/// The outcome of `spire ingest`.
#[derive(Debug, Clone, Serialize)]
pub struct IngestSummary {
    /// Per source.
    pub sources: Vec<SourceSummary>,
    /// The clean stage.
    pub clean: CleanReport,
}

/// Runs intake for `target`, then cleans the touched event dates.
pub async fn ingest(
    ws: &Workspace,
    target: &IngestTarget,
    progress: &dyn Progress,
) -> Result<IngestSummary> {
    let configs: Vec<SourceConfig> = match target {
        IngestTarget::All => {
            if ws.project.sources.is_empty() {
                return Err(PipelineError::InvalidInput(
                    "spire.toml declares no [[sources]]: add one, or pass --path FILE_OR_GLOB"
                        .into(),
                ));
            }
            ws.project.sources.clone()
        }
        IngestTarget::Sources(names) => names
            .iter()
            .map(|n| {
                ws.project.source(n).cloned().ok_or_else(|| {
                    let known: Vec<&str> =
                        ws.project.sources.iter().map(|s| s.name.as_str()).collect();
                    PipelineError::NotFound(format!(
                        "no source `{n}` in spire.toml (sources: {})",
                        known.join(", ")
                    ))
                })
            })
            .collect::<Result<_>>()?,
        IngestTarget::Path(p) => {
            let pattern = if std::path::Path::new(p).is_absolute() {
                p.clone()
            } else {
                std::env::current_dir()
                    .map(|d| d.join(p).display().to_string())
                    .unwrap_or_else(|_| p.clone())
            };
            vec![SourceConfig {
                name: "files".into(),
                kind: SourceKind::File {
                    pattern,
                    format: None,
                },
                fields: Vec::new(),
                fallback: None,
            }]
        }
    };
    let mut reports = Vec::new();
    let mut dates = BTreeSet::new();
    for config in &configs {
        let mut source = spire_ingest::build_source(config)?;
        let ingest_id = uuid::Uuid::new_v4().simple().to_string();
        let stage = format!("ingest {}", config.name);
        progress.start(&stage, 0);
        let mut tick = |n: u64| progress.update(&stage, n);
        let mut session = IntakeSession::start(
            &ws.lake,
            config,
            &ws.project.intake,
            source.as_mut(),
            &ingest_id,
        )
        .await?;
        session.run(RunUntil::caught_up(), &mut tick).await?;
        let partitions = session.status();
        let report = session.finish();
        progress.finish(
            &stage,
            &format!(
                "{}: {} read, {} accepted, {} dead-lettered",
                config.name, report.read, report.accepted, report.dead_lettered
            ),
        );
        dates.extend(report.dates.iter().copied());
        reports.push((report, partitions));
    }
    let dates: Vec<_> = dates.into_iter().map(date_from_days).collect();
    progress.start("clean", dates.len() as u64);
    let mut tick = |done: usize, _total: usize| progress.update("clean", done as u64);
    let clean = clean::clean(&ws.lake, &ws.project.cleaning, Some(dates), &mut tick).await?;
    progress.finish(
        "clean",
        &format!(
            "{} dates rebuilt: {} events ({} bot), {} duplicates removed",
            clean.dates, clean.events, clean.bot_events, clean.duplicates
        ),
    );
    let sources = summarize(ws, reports).await?;
    Ok(IngestSummary { sources, clean })
}

/// Settings of `spire ingest --follow`.
#[derive(Debug, Clone)]
pub struct Follow {
    /// The stream source to follow (`None`: the only stream source in `spire.toml`).
    pub source: Option<String>,
    /// How often the touched event dates are cleaned into `events` and a status is
    /// reported.
    pub clean_every: Duration,
    /// How often `events_raw` and `dead_letters` are compacted (`None`: never).
    pub compact_every: Option<Duration>,
    /// Target file size of that compaction.
    pub compact_target_bytes: u64,
}

/// One status report of a follow loop (one per round).
#[derive(Debug, Clone, Serialize)]
pub struct FollowStatus {
    /// Source name.
    pub source: String,
    /// Counts since the loop started.
    pub read: u64,
    /// Rows appended to `events_raw`.
    pub accepted: u64,
    /// Rows appended to `dead_letters`.
    pub dead_lettered: u64,
    /// Batches refused because another consumer had moved a partition on.
    pub refused_batches: u64,
    /// Records read per second over the last round.
    pub events_per_sec: f64,
    /// Event dates cleaned into `events` this round.
    pub cleaned_dates: usize,
    /// Files compacted this round (0 when no compaction was due).
    pub compacted_files: u64,
    /// Each assigned partition's position and lag, of the source being read.
    pub partitions: Vec<PartitionStatus>,
    /// The source being read now: `source`, or its fallback while `source` does not answer.
    pub reading: String,
    /// Switches between `source` and its fallback during this round.
    pub switches: Vec<Switch>,
}

/// A switch between a stream and its fallback.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Switch {
    /// The source read before.
    pub from: String,
    /// The source read after.
    pub to: String,
    /// Why, in words (how long the primary was silent and its last error, or that it
    /// answers again).
    pub reason: String,
    /// When, RFC 3339.
    pub at: String,
}

/// How often `--follow` checks, while reading a stream that has a fallback, whether it
/// still answers.
const FAILOVER_CHECK: Duration = Duration::from_secs(1);
/// How often `--follow` asks a silent primary whether it answers again while it reads the
/// fallback (each probe waits a few seconds for an answer).
const RETURN_PROBE: Duration = Duration::from_secs(3);

fn follow_source(ws: &Workspace, name: Option<&str>) -> Result<SourceConfig> {
    let streams: Vec<&SourceConfig> = ws
        .project
        .sources
        .iter()
        .filter(|s| s.kind.is_stream())
        .collect();
    match name {
        Some(n) => {
            let s = ws
                .project
                .source(n)
                .ok_or_else(|| PipelineError::NotFound(format!("no source `{n}` in spire.toml")))?;
            if !s.kind.is_stream() {
                return Err(PipelineError::InvalidInput(format!(
                    "--follow reads a stream, and source `{n}` is not one (kafka and kinesis \
                     sources are streams); ingest it without --follow"
                )));
            }
            Ok(s.clone())
        }
        None => match streams.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(PipelineError::InvalidInput(
                "--follow reads a stream, and spire.toml declares none: add a \
                 [[sources]] entry with kind = \"kafka\" or \"kinesis\""
                    .into(),
            )),
            many => Err(PipelineError::InvalidInput(format!(
                "--follow reads one stream per process; name it with --source (streams: {})",
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
    }
}

/// `spire ingest --follow`: consumes a stream until `shutdown` is set, committing batch by
/// batch; every `clean_every` it cleans the touched dates into `events` and reports a
/// [`FollowStatus`]; on shutdown it commits the batch in flight, cleans, and returns the
/// whole run's summary.
pub async fn follow(
    ws: &Workspace,
    settings: &Follow,
    shutdown: &AtomicBool,
    progress: &dyn Progress,
    on_status: &mut dyn FnMut(&FollowStatus),
) -> Result<IngestSummary> {
    let config = follow_source(ws, settings.source.as_deref())?;
    let fallback = match &config.fallback {
        Some(f) => Some((
            ws.project.source(&f.source).cloned().ok_or_else(|| {
                PipelineError::NotFound(format!("no fallback source `{}` in spire.toml", f.source))
            })?,
            Duration::from_secs(f.after_secs),
        )),
        None => None,
    };
    let mut source = spire_ingest::build_source(&config)?;
    let ingest_id = uuid::Uuid::new_v4().simple().to_string();
    let mut session = IntakeSession::start(
        &ws.lake,
        &config,
        &ws.project.intake,
        source.as_mut(),
        &ingest_id,
    )
    .await?;
    // The fallback has its own session (and ingest id, so each reconciles on its own).
    let mut fallback_source = match &fallback {
        Some((c, _)) => Some(spire_ingest::build_source(c)?),
        None => None,
    };
    let mut fallback_session = match (&fallback, fallback_source.as_mut()) {
        (Some((c, _)), Some(src)) => Some(
            IntakeSession::start(
                &ws.lake,
                c,
                &ws.project.intake,
                src.as_mut(),
                &uuid::Uuid::new_v4().simple().to_string(),
            )
            .await?,
        ),
        _ => None,
    };
    let stage = format!("follow {}", config.name);
    progress.start(&stage, 0);
    let mut totals = CleanReport::default();
    let mut last_compact = Instant::now();
    // When the current primary consumer started: its silence counts from here until the
    // broker first answers it.
    let mut primary_since = Instant::now();
    let mut on_fallback = false;
    let mut last_probe = Instant::now();
    // Primary sessions replaced after an outage, and the dates they touched.
    let mut retired: Vec<(IntakeReport, Vec<PartitionStatus>)> = Vec::new();
    // Dates an earlier intake committed but did not clean (it was killed in between) are
    // cleaned in the first round.
    let mut carried_dates: BTreeSet<i32> = clean::stale_dates(&ws.lake)
        .await?
        .into_iter()
        .map(spire_core::time::days_since_epoch)
        .collect();
    loop {
        let round_start = Instant::now();
        let read = |s: &IntakeSession<'_>| s.report().read;
        let read_before = read(&session)
            + fallback_session.as_ref().map_or(0, read)
            + retired.iter().map(|(r, _)| r.read).sum::<u64>();
        let round_end = round_start + settings.clean_every;
        let mut switches = Vec::new();
        // The round runs in slices, so a silent primary is noticed within a second or so.
        while Instant::now() < round_end && !shutdown.load(Ordering::SeqCst) {
            let slice_end = if fallback.is_some() {
                round_end.min(Instant::now() + FAILOVER_CHECK)
            } else {
                round_end
            };
            let until = RunUntil {
                follow: true,
                shutdown: Some(shutdown),
                deadline: Some(slice_end),
            };
            let mut tick = |n: u64| progress.update(&stage, n);
            match (&mut fallback_session, on_fallback) {
                (Some(fb), true) => fb.run(until, &mut tick).await?,
                _ => session.run(until, &mut tick).await?,
            }
            let (Some((fb_config, after)), Some(_)) = (&fallback, &fallback_session) else {
                continue;
            };
            let switch = |from: &str, to: &str, reason: String| {
                tracing::warn!(from, to, %reason, "switching streams");
                Switch {
                    from: from.to_string(),
                    to: to.to_string(),
                    reason,
                    at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                }
            };
            if on_fallback {
                if last_probe.elapsed() < RETURN_PROBE {
                    continue;
                }
                last_probe = Instant::now();
                if session.probe() {
                    switches.push(switch(
                        &fb_config.name,
                        &config.name,
                        format!("`{}` answers again", config.name),
                    ));
                    on_fallback = false;
                    // A fresh consumer: one whose broker vanished mid-session can stay out
                    // of its group afterwards (seen with librdkafka 2.12 against tansu after
                    // a freeze: revoked, never assigned again). Positions come from the
                    // lake, so the new one resumes exactly where the old one committed.
                    carried_dates.extend(session.take_dates());
                    let partitions = session.status();
                    retired.push((session.finish(), partitions));
                    let old = std::mem::replace(&mut source, spire_ingest::build_source(&config)?);
                    // Closing a consumer waits for its broker; let that happen aside.
                    std::thread::spawn(move || drop(old));
                    session = IntakeSession::start(
                        &ws.lake,
                        &config,
                        &ws.project.intake,
                        source.as_mut(),
                        &uuid::Uuid::new_v4().simple().to_string(),
                    )
                    .await?;
                    primary_since = Instant::now();
                }
            } else {
                let silent = session
                    .last_contact()
                    .map_or(primary_since.elapsed(), |t| t.elapsed());
                if silent >= *after {
                    let last = session
                        .last_error()
                        .map_or(String::new(), |e| format!("; last error: {e}"));
                    switches.push(switch(
                        &config.name,
                        &fb_config.name,
                        format!(
                            "no fetch from `{}` succeeded for {} s (failover_after_secs = {}){last}",
                            config.name,
                            silent.as_secs(),
                            after.as_secs()
                        ),
                    ));
                    on_fallback = true;
                }
            }
        }
        let mut touched = session.take_dates();
        touched.append(&mut carried_dates);
        if let Some(fb) = fallback_session.as_mut() {
            touched.extend(fb.take_dates());
        }
        let dates: Vec<_> = touched.into_iter().map(date_from_days).collect();
        let cleaned_dates = dates.len();
        if !dates.is_empty() {
            let r =
                clean::clean(&ws.lake, &ws.project.cleaning, Some(dates), &mut |_, _| {}).await?;
            totals.dates += r.dates;
            totals.raw_rows += r.raw_rows;
            totals.events += r.events;
            totals.bot_events += r.bot_events;
            totals.duplicates += r.duplicates;
            totals.version = r.version;
        }
        let mut compacted_files = 0;
        if let Some(every) = settings.compact_every {
            if last_compact.elapsed() >= every {
                for table in [EVENTS_RAW, DEAD_LETTERS] {
                    match ws.lake.optimize(table, settings.compact_target_bytes).await {
                        Ok(r) => compacted_files += r.files_removed,
                        Err(e) if e.kind() == spire_core::ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                last_compact = Instant::now();
            }
        }
        let reports: Vec<&IntakeReport> = std::iter::once(session.report())
            .chain(fallback_session.as_ref().map(|s| s.report()))
            .chain(retired.iter().map(|(r, _)| r))
            .collect();
        let sum = |f: fn(&IntakeReport) -> u64| reports.iter().map(|r| f(r)).sum::<u64>();
        let secs = round_start.elapsed().as_secs_f64().max(1e-3);
        let (reading, partitions) = match (&fallback_session, &fallback) {
            (Some(fb), Some((c, _))) if on_fallback => (c.name.clone(), fb.status()),
            _ => (config.name.clone(), session.status()),
        };
        on_status(&FollowStatus {
            source: config.name.clone(),
            read: sum(|r| r.read),
            accepted: sum(|r| r.accepted),
            dead_lettered: sum(|r| r.dead_lettered),
            refused_batches: sum(|r| r.refused_batches),
            events_per_sec: (sum(|r| r.read) - read_before) as f64 / secs,
            cleaned_dates,
            compacted_files,
            partitions,
            reading,
            switches,
        });
        if shutdown.load(Ordering::SeqCst) {
            break;
        }
    }
    let mut ended = retired;
    let partitions = session.status();
    ended.push((session.finish(), partitions));
    if let Some(fb) = fallback_session {
        let partitions = fb.status();
        ended.push((fb.finish(), partitions));
    }
    // Summary order: the primary's sessions, oldest first, then the fallback.
    let sources = summarize(ws, ended).await?;
    let finished = sources
        .iter()
        .map(|s| {
            format!(
                "{}: {} read, {} accepted, {} dead-lettered",
                s.intake.source, s.intake.read, s.intake.accepted, s.intake.dead_lettered
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    progress.finish(&stage, &format!("{finished} (stopped on request)"));
    Ok(IngestSummary {
        sources,
        clean: totals,
    })
}

/// Each session's report with its reconciliation against `events` and its partitions.
async fn summarize(
    ws: &Workspace,
    sessions: Vec<(IntakeReport, Vec<PartitionStatus>)>,
) -> Result<Vec<SourceSummary>> {
    let mut sources = Vec::new();
    for (intake, partitions) in sessions {
        let reconciliation = clean::reconcile(
            &ws.lake,
            &intake.ingest_id,
            intake.read,
            intake.dead_lettered,
        )
        .await?;
        sources.push(SourceSummary {
            intake,
            reconciliation,
            partitions,
        });
    }
    Ok(sources)
}

/// The outcome of `spire dead-letters replay`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Per source with pending dead letters.
    pub sources: Vec<ReplayReport>,
    /// Sources whose dead letters were left: no longer configured.
    pub skipped: Vec<String>,
    /// The clean stage over the dates that received rows (none in a dry run).
    pub clean: Option<CleanReport>,
}

/// The source config a dead letter of `name` is replayed with: the configured source, or the
/// defaults `spire ingest --path` used (source `files`).
fn replay_config(ws: &Workspace, name: &str) -> Option<SourceConfig> {
    ws.project.source(name).cloned().or_else(|| {
        (name == "files").then(|| SourceConfig {
            name: "files".into(),
            kind: SourceKind::File {
                pattern: String::new(),
                format: None,
            },
            fields: Vec::new(),
            fallback: None,
        })
    })
}

/// Replays the pending dead letters of `source` (every source when `None`) with the
/// current config, then cleans the dates that received rows.
pub async fn replay_dead_letters(
    ws: &Workspace,
    source: Option<&str>,
    dry_run: bool,
    progress: &dyn Progress,
) -> Result<ReplaySummary> {
    use spire_ingest::replay;
    let pending = replay::pending(&ws.lake, source).await?;
    let names: BTreeSet<String> = pending.iter().map(|l| l.source.clone()).collect();
    if let Some(s) = source {
        if replay_config(ws, s).is_none() {
            return Err(PipelineError::NotFound(format!(
                "no source `{s}` in spire.toml to replay its dead letters with"
            )));
        }
    }
    let mut sources = Vec::new();
    let mut skipped = Vec::new();
    let mut dates = BTreeSet::new();
    for name in names {
        let Some(config) = replay_config(ws, &name) else {
            skipped.push(name);
            continue;
        };
        let stage = format!("replay {name}");
        progress.start(&stage, 0);
        let ingest_id = uuid::Uuid::new_v4().simple().to_string();
        let report =
            replay::replay(&ws.lake, &config, &ws.project.intake, &ingest_id, dry_run).await?;
        progress.finish(
            &stage,
            &format!(
                "{name}: {} pending, {} replayed, {} still rejected",
                report.pending,
                report.replayed,
                report.still_rejected.values().sum::<u64>()
            ),
        );
        dates.extend(report.dates.iter().copied());
        sources.push(report);
    }
    let clean = if dry_run || dates.is_empty() {
        None
    } else {
        let dates: Vec<_> = dates.into_iter().map(date_from_days).collect();
        progress.start("clean", dates.len() as u64);
        let mut tick = |done: usize, _total: usize| progress.update("clean", done as u64);
        let report = clean::clean(&ws.lake, &ws.project.cleaning, Some(dates), &mut tick).await?;
        progress.finish("clean", &format!("{} dates rebuilt", report.dates));
        Some(report)
    };
    Ok(ReplaySummary {
        sources,
        skipped,
        clean,
    })
}
