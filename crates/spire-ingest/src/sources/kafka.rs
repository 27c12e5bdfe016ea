//! The `kafka` source: topics read as a consumer group through librdkafka (`rdkafka`).
//!
//! Each Kafka partition is one partition of the source, named `topic/partition`; offsets
//! are Kafka offsets. Where a partition resumes is the lake's business, not the broker's:
//! when the group assigns partitions, the rebalance callback asks the intake's
//! [`PositionLookup`] for the last offset each one committed to Delta and starts right
//! after it. Offsets committed to the group serve only other tools' lag reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use spire_core::config::{KafkaSettings, StartFrom};

use crate::error::{IngestError, Result};
use crate::record::{Position, RawRecord};
use crate::source::{Checkpoints, PartitionStatus, PositionLookup, Source};

/// How long a poll waits when nothing is buffered before `next_batch` says so.
const IDLE_POLL: Duration = Duration::from_millis(200);
/// Network calls to the broker outside polling (watermarks, seeks).
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle consumer asks the broker for a sign of life (see `Source::probe`).
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// How long a probe waits for the broker's answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a bounded read (`spire ingest` without `--follow`) waits for the group to
/// assign it partitions before it gives up with an error.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A partition as the broker names it.
type TopicPartition = (String, i32);

fn partition_name(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

fn parse_partition_name(name: &str) -> Option<TopicPartition> {
    let (topic, p) = name.rsplit_once('/')?;
    Some((topic.to_string(), p.parse().ok()?))
}

/// What this consumer knows of one assigned partition.
#[derive(Debug, Clone, Default)]
struct Assigned {
    /// The next offset to deliver, once known (`None`: from the partition's start).
    next: Option<i64>,
    /// The last offset committed to the lake through this consumer.
    committed: Option<i64>,
    /// The high watermark as last fetched.
    high: Option<i64>,
}

#[derive(Default)]
struct State {
    assigned: BTreeMap<TopicPartition, Assigned>,
    /// An error that must stop intake (the lake could not be asked for positions).
    fatal: Option<String>,
    /// The broker's last complaint, for messages when it stops answering.
    last_error: Option<String>,
}

/// State shared between the source and librdkafka's callbacks.
struct Shared {
    source: String,
    start_from: StartFrom,
    lookup: Mutex<Option<PositionLookup>>,
    epoch: AtomicU64,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a callback panicked; the state itself stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// librdkafka's callbacks: rebalances position partitions from the lake; errors are kept
/// for messages.
struct Context(Arc<Shared>);

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::warn!(source = %self.0.source, facility = fac, "librdkafka: {log_message}")
            }
            _ => {
                tracing::debug!(source = %self.0.source, facility = fac, "librdkafka: {log_message}")
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(source = %self.0.source, %error, reason, "kafka client error");
        self.0.state().last_error = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let shared = &self.0;
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts: Vec<TopicPartition> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_string(), e.partition()))
                    .collect();
                let names: Vec<String> = parts.iter().map(|(t, p)| partition_name(t, *p)).collect();
                let lookup = shared
                    .lookup
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                let positions = match lookup {
                    Some(lookup) => lookup(&names),
                    None => Err(IngestError::InvalidInput(
                        "internal: a Kafka source was polled before intake installed its position lookup".into(),
                    )),
                };
                let positions = match positions {
                    Ok(p) => p,
                    Err(e) => {
                        // Never read from a guessed position: stop instead.
                        let _ = consumer.unassign();
                        let mut state = shared.state();
                        state.assigned.clear();
                        state.fatal = Some(format!(
                            "partitions {} were assigned, but their positions could not be read from the lake: {e}",
                            names.join(", ")
                        ));
                        shared.epoch.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                };
                let positions: Checkpoints = positions
                    .into_iter()
                    .filter_map(|(p, lp)| Some((p, lp.resume_after()?)))
                    .collect();
                let mut assigned = BTreeMap::new();
                for ((topic, partition), name) in parts.into_iter().zip(&names) {
                    let (offset, next) = match positions.get(name) {
                        Some(&cp) => (Offset::Offset(cp + 1), Some(cp + 1)),
                        None => match shared.start_from {
                            StartFrom::Earliest => (Offset::Beginning, None),
                            StartFrom::Latest => (Offset::End, None),
                        },
                    };
                    if let Err(e) = tpl.set_partition_offset(&topic, partition, offset) {
                        shared.state().fatal = Some(format!("cannot position {name}: {e}"));
                    }
                    let committed = positions.get(name).copied().filter(|cp| *cp >= 0);
                    assigned.insert(
                        (topic, partition),
                        Assigned {
                            next,
                            committed,
                            high: None,
                        },
                    );
                }
                tracing::info!(source = %shared.source, partitions = %names.join(","), "partitions assigned; resuming from the lake's positions");
                if let Err(e) = consumer.assign(tpl) {
                    shared.state().fatal =
                        Some(format!("cannot take the assigned partitions: {e}"));
                }
                shared.state().assigned = assigned;
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(source = %shared.source, "partitions revoked (group rebalance)");
                let _ = consumer.unassign();
                shared.state().assigned.clear();
            }
            other => {
                tracing::warn!(source = %shared.source, error = ?other, "rebalance error; dropping the assignment");
                let _ = consumer.unassign();
                shared.state().assigned.clear();
            }
        }
        shared.epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// Reads Kafka topics as a member of a consumer group.
pub struct KafkaSource {
    name: String,
    settings: KafkaSettings,
    consumer: BaseConsumer<Context>,
    shared: Arc<Shared>,
    subscribed_at: Instant,
    last_contact: Option<Instant>,
    last_probe: Option<Instant>,
}

impl KafkaSource {
    /// Connects (lazily: librdkafka connects in the background) and subscribes to the
    /// configured topics.
    pub fn new(name: &str, settings: &KafkaSettings) -> Result<KafkaSource> {
        let err = |message: String| IngestError::Source {
            source_name: name.to_string(),
            message,
        };
        let shared = Arc::new(Shared {
            source: name.to_string(),
            start_from: settings.start_from,
            lookup: Mutex::new(None),
            epoch: AtomicU64::new(0),
            state: Mutex::new(State::default()),
        });
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &settings.brokers)
            .set("group.id", &settings.group_id)
            .set("client.id", format!("spire-{name}"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("partition.assignment.strategy", "roundrobin")
            .set(
                "auto.offset.reset",
                match settings.start_from {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            );
        for (k, v) in &settings.options {
            config.set(k, v);
        }
        let consumer: BaseConsumer<Context> = config
            .create_with_context(Context(shared.clone()))
            .map_err(|e| {
            err(format!(
                "cannot create a Kafka consumer for {}: {e} (check the source's `options`)",
                settings.brokers
            ))
        })?;
        let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| err(format!("cannot subscribe to {}: {e}", topics.join(", "))))?;
        Ok(KafkaSource {
            name: name.to_string(),
            settings: settings.clone(),
            consumer,
            shared,
            subscribed_at: Instant::now(),
            last_contact: None,
            last_probe: None,
        })
    }

    fn error(&self, message: String) -> IngestError {
        IngestError::Source {
            source_name: self.name.clone(),
            message,
        }
    }

    fn broker_hint(&self) -> String {
        match &self.shared.state().last_error {
            Some(e) => format!("the broker's last error: {e}"),
            None => "no error was reported by the client".into(),
        }
    }

    /// A copy of what is known of each assigned partition (the lock is not held after).
    fn assigned(&self) -> Vec<(TopicPartition, Assigned)> {
        self.shared
            .state()
            .assigned
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn check_fatal(&self) -> Result<()> {
        match self.shared.state().fatal.clone() {
            Some(f) => Err(self.error(f)),
            None => Ok(()),
        }
    }
}

impl Source for KafkaSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn is_stream(&self) -> bool {
        true
    }

    fn set_position_lookup(&mut self, lookup: PositionLookup) {
        *self.shared.lookup.lock().unwrap_or_else(|e| e.into_inner()) = Some(lookup);
    }

    fn assignment_epoch(&self) -> u64 {
        self.shared.epoch.load(Ordering::SeqCst)
    }

    fn partitions(&self) -> Vec<String> {
        self.shared
            .state()
            .assigned
            .keys()
            .map(|(t, p)| partition_name(t, *p))
            .collect()
    }

    fn seek(&mut self, checkpoints: &Checkpoints) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        {
            let mut state = self.shared.state();
            for (name, cp) in checkpoints {
                let Some(tp) = parse_partition_name(name) else {
                    continue;
                };
                let Some(a) = state.assigned.get_mut(&tp) else {
                    continue;
                };
                a.next = Some(cp + 1);
                tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(cp + 1))
                    .map_err(|e| self.error(format!("cannot seek {name}: {e}")))?;
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        let result = self
            .consumer
            .seek_partitions(tpl, BROKER_TIMEOUT)
            .map_err(|e| self.error(format!("cannot seek: {e}; {}", self.broker_hint())))?;
        for e in result.elements() {
            if let Err(err) = e.error() {
                return Err(self.error(format!(
                    "cannot seek {}: {err}",
                    partition_name(e.topic(), e.partition())
                )));
            }
        }
        Ok(())
    }

    fn next_batch(&mut self, max_records: usize) -> Result<Option<Vec<RawRecord>>> {
        self.check_fatal()?;
        let linger = Duration::from_millis(self.settings.batch_max_wait_ms);
        let mut epoch = self.assignment_epoch();
        let mut out: Vec<RawRecord> = Vec::new();
        let mut bytes = 0u64;
        let mut first_at: Option<Instant> = None;
        while out.len() < max_records && bytes < self.settings.batch_max_bytes {
            let wait = match first_at {
                None => IDLE_POLL,
                Some(t) => match linger.checked_sub(t.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => break,
                },
            };
            let polled = self.consumer.poll(wait);
            self.check_fatal()?;
            if self.assignment_epoch() != epoch {
                // A rebalance ran inside poll: what was read before it may belong to
                // another consumer now, or be read again from the lake's position.
                epoch = self.assignment_epoch();
                out.clear();
                bytes = 0;
                first_at = None;
            }
            match polled {
                None => {
                    if first_at.is_none() {
                        // Idle: make sure the broker is still there (failover watches it).
                        if self.last_probe.is_none_or(|t| t.elapsed() >= PROBE_EVERY) {
                            self.probe();
                        }
                        return Ok(None);
                    }
                }
                Some(Ok(m)) => {
                    self.last_contact = Some(Instant::now());
                    let tp = (m.topic().to_string(), m.partition());
                    {
                        let mut state = self.shared.state();
                        let Some(a) = state.assigned.get_mut(&tp) else {
                            // A late record of a partition no longer held: not ours.
                            continue;
                        };
                        if a.next.is_some_and(|next| m.offset() < next) {
                            // Delivered again (a broker answering a fetch with records
                            // before the fetch offset): offsets only move forward.
                            tracing::debug!(source = %self.name, partition = %partition_name(&tp.0, tp.1),
                                offset = m.offset(), "record delivered twice; skipped");
                            continue;
                        }
                        a.next = Some(m.offset() + 1);
                    }
                    let payload = m.payload().map(<[u8]>::to_vec).unwrap_or_default();
                    bytes += payload.len() as u64;
                    out.push(RawRecord {
                        payload,
                        position: Position {
                            source: self.name.clone(),
                            partition: partition_name(&tp.0, tp.1),
                            offset: m.offset(),
                            sequence: None,
                        },
                    });
                    first_at.get_or_insert_with(Instant::now);
                }
                Some(Err(KafkaError::PartitionEOF(_))) => {}
                Some(Err(e)) => {
                    tracing::warn!(source = %self.name, error = %e, "kafka fetch error; retrying");
                    self.shared.state().last_error = Some(e.to_string());
                    if first_at.is_none() {
                        return Ok(None);
                    }
                }
            }
        }
        Ok(if out.is_empty() { None } else { Some(out) })
    }

    fn caught_up(&mut self) -> Result<bool> {
        self.check_fatal()?;
        let assigned = self.assigned();
        if assigned.is_empty() {
            if self.subscribed_at.elapsed() > ASSIGNMENT_TIMEOUT {
                return Err(self.error(format!(
                    "no partition of {} was assigned to group `{}` within {} s: check that \
                     the topics exist and that {} answers ({})",
                    self.settings.topics.join(", "),
                    self.settings.group_id,
                    ASSIGNMENT_TIMEOUT.as_secs(),
                    self.settings.brokers,
                    self.broker_hint()
                )));
            }
            return Ok(false);
        }
        let mut all = true;
        for ((topic, partition), a) in assigned {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&topic, partition, BROKER_TIMEOUT)
                .map_err(|e| {
                    self.error(format!(
                        "{}: cannot read the partition's end from {}: {e} ({})",
                        partition_name(&topic, partition),
                        self.settings.brokers,
                        self.broker_hint()
                    ))
                })?;
            if let Some(s) = self
                .shared
                .state()
                .assigned
                .get_mut(&(topic.clone(), partition))
            {
                s.high = Some(high);
            }
            let done = match a.next {
                Some(next) => next >= high,
                None => high <= low || self.settings.start_from == StartFrom::Latest,
            };
            all &= done;
        }
        Ok(all)
    }

    fn committed(&mut self, positions: &Checkpoints) {
        let mut tpl = TopicPartitionList::new();
        {
            let mut state = self.shared.state();
            for (name, cp) in positions {
                let Some(tp) = parse_partition_name(name) else {
                    continue;
                };
                if let Some(a) = state.assigned.get_mut(&tp) {
                    a.committed = Some(*cp);
                    let _ = tpl.add_partition_offset(&tp.0, tp.1, Offset::Offset(cp + 1));
                }
            }
        }
        if tpl.count() > 0 {
            // For lag reports only: a failed or lost commit changes nothing Spire reads.
            if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
                tracing::debug!(source = %self.name, error = %e, "offset commit to the group failed");
            }
        }
    }

    fn last_contact(&self) -> Option<Instant> {
        self.last_contact
    }

    fn probe(&mut self) -> bool {
        self.last_probe = Some(Instant::now());
        let topic = self.settings.topics.first().map(String::as_str);
        match self.consumer.fetch_metadata(topic, PROBE_TIMEOUT) {
            Ok(_) => {
                self.last_contact = Some(Instant::now());
                true
            }
            Err(e) => {
                tracing::debug!(source = %self.name, error = %e, "kafka broker did not answer a probe");
                self.shared.state().last_error = Some(e.to_string());
                false
            }
        }
    }

    fn last_error(&self) -> Option<String> {
        self.shared.state().last_error.clone()
    }

    fn status(&self) -> Vec<PartitionStatus> {
        let assigned = self.assigned();
        assigned
            .into_iter()
            .map(|((topic, partition), a)| {
                let high = self
                    .consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(2))
                    .ok()
                    .map(|(_, h)| h)
                    .or(a.high);
                PartitionStatus {
                    partition: partition_name(&topic, partition),
                    committed: a.committed,
                    high_watermark: high,
                    lag: high.map(|h| (h - a.committed.map_or(0, |c| c + 1)).max(0)),
                    behind_ms: None,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_round_trip() {
        assert_eq!(partition_name("clicks.v2", 7), "clicks.v2/7");
        assert_eq!(
            parse_partition_name("clicks.v2/7"),
            Some(("clicks.v2".to_string(), 7))
        );
        assert_eq!(parse_partition_name("no-partition"), None);
        assert_eq!(parse_partition_name("t/x"), None);
    }
}
